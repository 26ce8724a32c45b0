"""The batch scoring task: a thin shell around :func:`mlservice.serving.scoring.run_job`.

It runs on the training queue (long work), under the job's lease
(:meth:`~.base.ServiceTask.run_leased`, job id: the output data set's): a job
whose worker died is sent again by the sweep within seconds of its lease
lapsing, its half-written file removed first, and starts over; one started more
than ``[service] max_job_deliveries`` times fails with the reason; a job
already finished answers its result again. A hard time limit removes the
unfinished output at once and fails the job.
"""

from __future__ import annotations

from typing import Any

from celery.exceptions import Ignore

from ..celery_app import TaskName, app
from ..errors import NotFound
from ..serving import scoring
from ..serving.scoring import ScoringJob
from ..store.user_records import new_account_id
from .base import ServiceTask, settle_killed_job


def _scoring_stopped(task: ServiceTask, args: tuple[Any, ...]) -> None:
    """The job's process was killed mid-write at its time limit: remove its output, and
    fail the job (the sweep must not send it again)."""
    if len(args) >= 2:
        ctx = task.ctx
        scoring.remove_unfinished(ctx.datasets, str(args[1]))
        limit = ctx.settings.service.task_time_limit_seconds
        settle_killed_job(ctx.scoring_runs, str(args[1]), limit)


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

    def work() -> dict[str, Any]:
        return scoring.run_job(
            ctx.datasets,
            ctx.models.catalog,
            ctx.cache,
            job,
            ctx.settings.inference.scoring_chunk_rows,
            progress,
        )

    def done_before() -> dict[str, Any]:
        """A delivery of a job that finished: its result again, unless its output is gone."""
        try:
            return scoring.job_result(job, ctx.datasets.catalog.get(output_id))
        except NotFound:
            raise Ignore() from None  # deleted since: nothing to answer, nothing to redo

    def give_up(reason: str) -> None:
        scoring.remove_unfinished(ctx.datasets, output_id)

    args = (model_id, output_id, owner, request)
    return self.run_leased(ctx.scoring_runs, output_id, args, work, done_before, give_up)
