"""The batch scoring task: a thin shell around :func:`mlservice.serving.scoring.run_job`.

It runs on the training queue (long work). Delivery is ``acks_late``: a job
whose worker died is delivered again and starts over, its half-written file
removed first; a job already finished answers its result again. A hard time
limit removes the unfinished output at once.
"""

from __future__ import annotations

from typing import Any

from ..celery_app import TaskName, app
from ..serving import scoring
from ..serving.scoring import ScoringJob
from ..store.user_records import new_account_id
from .base import ServiceTask


def _scoring_stopped(task: ServiceTask, args: tuple[Any, ...]) -> None:
    """The job's process was killed mid-write at its time limit: remove its output."""
    if len(args) >= 2:
        scoring.remove_unfinished(task.ctx.datasets, str(args[1]))


def _owner(task: ServiceTask, owner: dict[str, str] | str) -> dict[str, str]:
    """The job's owner as sent; a job sent before account ids named only the user, whose
    account id is looked up now (none left: an id no account has, so only admins see it)."""
    if isinstance(owner, dict):
        return owner
    access = task.ctx.accounts.current_access(owner)
    return {"username": owner, "account_id": access.account_id if access else new_account_id()}


@app.task(bind=True, base=ServiceTask, name=TaskName.SCORE_DATASET, on_time_limit=_scoring_stopped)
def score_dataset(
    self: ServiceTask,
    model_id: str,
    output_id: str,
    owner: dict[str, str] | str,
    request: dict[str, Any],
) -> dict[str, Any]:
    """Score a stored data set with a model into the new data set ``output_id``."""
    ctx = self.ctx
    job = ScoringJob.from_task_args(model_id, output_id, _owner(self, owner), request)

    def progress(done: int, total: int) -> None:
        self.progress(
            done / total if total else 0.0,
            f"scored {done} of {total} rows",
            rows_done=done,
            rows_total=total,
        )

    return scoring.run_job(
        ctx.datasets,
        ctx.models.catalog,
        ctx.cache,
        job,
        ctx.settings.inference.scoring_chunk_rows,
        progress,
    )
