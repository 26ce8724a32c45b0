"""Sweeps: scoring and profiling jobs whose worker died, sent again; partial files removed.

Sent by ``celery beat`` every ``SWEEP_SECONDS`` (``celery_app.py``). Each job
claimed (:meth:`mlservice.store.job_runs.JobRuns.sweep`) is sent again as the
task it was, under the same task id (its client's ``status_url`` follows the
new run) and the same request id (its log lines name the request that started
it); a scoring job's half-written output is removed first.

Every few minutes (and when a worker starts: :mod:`mlservice.worker`) the
partial files writers that died left in the artifact store go
(:meth:`mlservice.store.artifacts.ArtifactStore.sweep_partial`).
"""

from __future__ import annotations

from celery.utils.log import get_task_logger

from ..celery_app import TaskName, app
from ..serving import scoring
from ..store.job_runs import JobTask
from .base import ServiceTask

log = get_task_logger(__name__)


def _nothing_partial(job_id: str) -> None:
    """Profiling writes nothing but the data set's record: nothing to remove."""


@app.task(base=ServiceTask, name=TaskName.SWEEP_JOBS, ignore_result=True)
def sweep_jobs() -> dict[str, list[str]]:
    """Send again the scoring and profiling jobs whose run stopped; answers the jobs sent."""
    ctx = sweep_jobs.ctx

    def resend(task: JobTask) -> None:
        ctx.enqueue(
            TaskName(task.name), task.args, task_id=task.task_id, request_id=task.request_id
        )

    def remove_scoring_output(output_id: str) -> None:
        scoring.remove_unfinished(ctx.datasets, output_id)

    return {
        "scoring": ctx.scoring_runs.sweep(resend, remove_scoring_output),
        "profiling": ctx.profiling_runs.sweep(resend, _nothing_partial),
    }


@app.task(base=ServiceTask, name=TaskName.SWEEP_PARTIAL_FILES, ignore_result=True)
def sweep_partial_files() -> list[str]:
    """Remove the partial files dead writers left; answers the files removed."""
    artifacts = sweep_partial_files.ctx.datasets.artifacts
    return [str(path) for path in artifacts.sweep_partial()]
