"""The Celery task of batch scoring: a thin shell around :func:`.scoring.score_dataset`.

It runs on the training queue (long work), with the time limits every task
gets from :func:`mlservice.celery_app.configure` (``[service]
task_time_limit_seconds``). Delivery is ``acks_late``: a job whose worker died
is delivered again and starts over, its half-written file removed first; a
job already finished answers its result again. Its name is a fixed string, as
queued messages name it.
"""

from __future__ import annotations

from typing import Any

from celery import Task as CeleryTask
from celery.exceptions import TimeLimitExceeded
from celery.signals import task_failure
from celery.utils.log import get_task_logger

from ..celery_app import TRAINING_QUEUE, app
from ..context import worker_context
from ..errors import NotFound
from ..store import bundles, published
from ..store.records import DatasetRecord
from . import scoring
from .predictor import Predictor
from .scoring import ScoringFailed, ScoringJob, ScoringRequest

log = get_task_logger(__name__)


def _reporter(task: CeleryTask) -> scoring.Progress:
    """Progress as task state, which GET /resource/task/status/<id> shows."""

    def progress(done: int, total: int) -> None:
        task.update_state(
            state="PROGRESS",
            meta={
                "progress": done / total if total else 0.0,
                "status": f"scored {done} of {total} rows",
                "rows_done": done,
                "rows_total": total,
            },
        )

    return progress


@app.task(bind=True, name="mlservice.tasks.score_dataset", queue=TRAINING_QUEUE)
def score_dataset(
    self: CeleryTask, model_id: str, output_id: str, owner: str, request: dict[str, Any]
) -> dict[str, Any]:
    """Score a stored data set with a model into the new data set ``output_id``."""
    ctx = worker_context()
    job = ScoringJob(model_id, output_id, owner, ScoringRequest.from_json(request))
    try:  # delivered again after it finished (its acknowledgement was lost)
        return _result(job, ctx.datasets.catalog.get(output_id))
    except NotFound:
        pass
    try:
        source = ctx.datasets.catalog.get(job.request.dataset_id)
    except NotFound:
        raise ScoringFailed(
            f"data set {job.request.dataset_id!r} was deleted before it was scored"
        ) from None
    fetched = published.fetch(ctx.store, model_id)
    if fetched is None:
        raise ScoringFailed(f"model {model_id!r} was deleted before it scored anything")
    predictor = Predictor(bundles.loads(fetched[1], ctx.secret), ctx.settings.inference)
    progress = _reporter(self)
    progress(0, source["rows"])
    record = scoring.score_dataset(
        ctx.datasets,
        ctx.models.catalog,
        predictor,
        source,
        job,
        ctx.settings.inference.scoring_chunk_rows,
        progress,
    )
    return _result(job, record)


def _result(job: ScoringJob, record: DatasetRecord) -> dict[str, Any]:
    """The task's result: the new data set, and what it was made from."""
    return {
        "dataset_id": record["id"],
        "model_id": job.model_id,
        "source_dataset_id": job.request.dataset_id,
        "format": record["format"],
        "rows": record["rows"],
        "columns": [column["name"] for column in record["columns"]],
    }


@task_failure.connect
def _over_time_limit(
    sender: CeleryTask | None = None,
    exception: BaseException | None = None,
    args: tuple[Any, ...] = (),
    **_: Any,
) -> None:
    """A hard time limit kills the job's process mid-write: remove its unfinished file.

    Sent in the worker's main process, which killed the job (the message is acknowledged).
    """
    if getattr(sender, "name", None) != score_dataset.name:
        return
    if not isinstance(exception, TimeLimitExceeded) or len(args) < 2:
        return
    ctx = worker_context()
    output_id = str(args[1])
    try:
        ctx.datasets.catalog.get(output_id)
    except NotFound:  # unfinished: nothing may be left of it
        ctx.datasets.artifacts.delete(ctx.datasets.KIND, output_id)
        log.warning("scoring into data set %s stopped at its time limit", output_id)
