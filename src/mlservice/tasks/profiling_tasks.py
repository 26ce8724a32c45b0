"""The task that profiles a large upload after the API has answered 202.

Profiling reads the whole file again, slower than the disk writes it, so an
upload over ``[service] inline_profile_mb`` is only stored by the request; this
task then calls :meth:`~mlservice.store.dataset_files.Datasets.finish_profiling`,
the same profile and the same messages as a small upload gets in the request.
The data set's record says the outcome (``ready`` or ``failed``); the task's
state says it too, for the ``status_url`` of the 202.

The task runs under the job's lease (:meth:`~.base.ServiceTask.run_leased`,
job id: the data set's): when its worker dies, the sweep sends it again within
seconds of the lease lapsing, and it profiles again from the start, or finds
the record already settled and answers its outcome. A data set whose profiling
started more than ``[service] max_job_deliveries`` times, or was killed at the
hard time limit, is ``failed`` with the reason.
"""

from __future__ import annotations

from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from ..celery_app import TaskName, app
from ..errors import NotFound
from ..store.dataset_files import profiling_outcome
from .base import ServiceTask, settle_killed_job

#: A data set's ``error`` when profiling failed on an error of the service's own (Celery
#: logs it, with the task id).
INTERNAL_ERROR = (
    "profiling failed on an error in the service (logged with the task id): upload the "
    "file again, and if it fails again, tell the service's operator"
)


def _fail_quietly(task: ServiceTask, dataset_id: str, reason: str) -> None:
    """Record why the data set will not be profiled (unless it was deleted meanwhile)."""
    try:
        task.ctx.datasets.fail(dataset_id, reason)
    except NotFound:
        task.ctx.datasets.discard(dataset_id)


def _profiling_stopped(task: ServiceTask, args: tuple[Any, ...]) -> None:
    """The job's process was killed at its hard time limit: fail the data set now."""
    if args:
        limit = task.ctx.settings.service.task_time_limit_seconds
        reason = settle_killed_job(task.ctx.profiling_runs, str(args[0]), limit)
        _fail_quietly(task, str(args[0]), reason)


@app.task(
    bind=True, base=ServiceTask, name=TaskName.PROFILE_DATASET, on_time_limit=_profiling_stopped
)
def profile_dataset(self: ServiceTask, dataset_id: str) -> dict[str, Any]:
    """Profile the data set under the job's lease and record the outcome; raises
    :class:`~mlservice.store.dataset_files.ProfilingFailed` on a bad file."""

    def work() -> dict[str, Any]:
        return _profile(self, dataset_id)

    def give_up(reason: str) -> None:
        _fail_quietly(self, dataset_id, reason)

    return self.run_leased(self.ctx.profiling_runs, dataset_id, (dataset_id,), work, work, give_up)


def _profile(task: ServiceTask, dataset_id: str) -> dict[str, Any]:
    """Profile the data set and record the outcome (see :func:`profile_dataset`).

    A data set deleted before or while it is profiled leaves nothing behind.
    """
    ctx = task.ctx
    datasets = ctx.datasets
    try:
        try:
            record = datasets.finish_profiling(dataset_id)
        except SoftTimeLimitExceeded:
            limit = ctx.settings.service.task_time_limit_seconds
            why = f"profiling was stopped: over [service] task_time_limit_seconds = {limit}"
            record = datasets.fail(dataset_id, why)
        except NotFound:
            raise
        except Exception:  # a bug, not the file: settle the record, keep the traceback
            datasets.fail(dataset_id, INTERNAL_ERROR)
            raise
    except NotFound:
        datasets.discard(dataset_id)
        return {"dataset_id": dataset_id, "status": "deleted"}
    return profiling_outcome(record)
