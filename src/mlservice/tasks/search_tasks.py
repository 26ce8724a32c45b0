"""Search tasks: start a search, run one trial, refit the best, and the sweep.

Shells around :class:`mlservice.training.search_runs.Searcher`: the tasks give
it the way to send a trial or a refit (by task name, with the trial's time
limits), the trainer that refits (the training task's, so the best model is
registered with ``register_as`` like any other), Celery's soft time limit as
a trial's "stopped" and the metrics of trials; they turn its outcomes into
Celery's (``Ignore`` for a delivery another live run already handles, a retry
while the best model trains in another delivery).
"""

from __future__ import annotations

from typing import Any

from celery.exceptions import Ignore, SoftTimeLimitExceeded
from celery.utils.log import get_task_logger

from .. import telemetry
from ..celery_app import TaskName, app
from ..context import ServiceContext
from ..training.jobs import AlreadyRunning
from ..training.search_runs import RefitElsewhere, Searcher, TrialAlreadyRunning
from .base import ServiceTask
from .training_tasks import trainer

log = get_task_logger(__name__)

#: A trial still running this long after its soft time limit has its process killed.
TRIAL_KILL_GRACE_SECONDS = 15.0
#: How often a refit whose model trains in another delivery looks again, and how many times.
REFIT_RETRY_SECONDS = 5
REFIT_RETRIES = 720


def searcher(ctx: ServiceContext) -> Searcher:
    """The worker's searcher: its stores, its limits, and its steps sent as tasks."""

    def send_trial(search_id: str, number: int, task_id: str, limit: float) -> None:
        ctx.enqueue(
            TaskName.RUN_TRIAL,
            (search_id, number),
            task_id=task_id,
            time_limits=(limit, limit + TRIAL_KILL_GRACE_SECONDS),
        )

    def send_refit(search_id: str, task_id: str) -> None:
        ctx.enqueue(TaskName.REFIT_SEARCH, (search_id,), task_id=task_id)

    return Searcher(
        store=ctx.searches,
        models=ctx.models,
        datasets=ctx.datasets,
        settings=ctx.settings.search,
        send_trial=send_trial,
        send_refit=send_refit,
        train_model=trainer(ctx).train,
        time_limit_errors=(SoftTimeLimitExceeded,),
        model_elsewhere=(AlreadyRunning,),
        trial_running=telemetry.search_trials_running,
        trial_ended=telemetry.search_trial_ended,
    )


@app.task(base=ServiceTask, name=TaskName.START_SEARCH, ignore_result=True)
def start_search(search_id: str) -> None:
    """Start a search's clock and send its first trials."""
    searcher(start_search.ctx).advance(search_id)


def _trial_stopped(task: ServiceTask, args: tuple[Any, ...]) -> None:
    """A trial's process was killed at its hard time limit: record it failed and go on."""
    if len(args) >= 2:
        searcher(task.ctx).trial_stopped_by_time_limit(str(args[0]), int(args[1]))


@app.task(bind=True, base=ServiceTask, name=TaskName.RUN_TRIAL, on_time_limit=_trial_stopped)
def run_search_trial(self: ServiceTask, search_id: str, number: int) -> dict[str, Any]:
    """Cross-validate one configuration of a search, then send the search's next trials.

    A delivery while another run holds the trial is dropped (:class:`Ignore`).
    """
    try:
        return searcher(self.ctx).run_trial(search_id, number, self.progress)
    except TrialAlreadyRunning:
        log.info("search %s: trial %d runs elsewhere; this delivery is dropped", search_id, number)
        raise Ignore() from None


@app.task(
    bind=True,
    base=ServiceTask,
    name=TaskName.REFIT_SEARCH,
    max_retries=REFIT_RETRIES,
    default_retry_delay=REFIT_RETRY_SECONDS,
)
def refit_search(self: ServiceTask, search_id: str) -> dict[str, Any]:
    """Refit a search's best configuration as a ready model, score it, draw the report.

    While another delivery trains that model (its worker died, and the training sweep
    resumed it), this one looks again every few seconds.
    """
    try:
        return searcher(self.ctx).refit(search_id, self.progress)
    except RefitElsewhere:
        log.info("search %s: its best model trains elsewhere; looking again soon", search_id)
        raise self.retry() from None


@app.task(base=ServiceTask, name=TaskName.SWEEP_SEARCHES, ignore_result=True)
def sweep_searches() -> dict[str, list[str]]:
    """Send again the trials and refits whose worker died, and move every active search on
    (its next trials, its deadline). Sent by ``celery beat`` every ``SWEEP_SECONDS``."""
    return searcher(sweep_searches.ctx).sweep()
