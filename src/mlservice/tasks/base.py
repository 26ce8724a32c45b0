"""The one base class of the service's Celery tasks: progress, time limits, failures.

* :meth:`ServiceTask.progress` records how far a task is as its state, which
  ``GET /resource/task/status/<id>`` shows;
* a hard time limit kills a task's process: Celery then reports the failure in
  the worker's main process, where the task's ``on_time_limit`` (a task option,
  ``@app.task(base=ServiceTask, on_time_limit=...)``, a function of the task and
  the arguments it was called with) settles what the task left half done (a
  model ``training``, a half-written file);
* :class:`~mlservice.errors.JobFailed` is an expected outcome (``throws``):
  Celery records it without a traceback;
* :meth:`ServiceTask.run_leased` runs a scoring or profiling job under its
  lease (:mod:`mlservice.store.job_runs`), so that the sweep sends it again when
  its worker dies, and fails it after too many starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from celery import Task
from celery.exceptions import Ignore, TimeLimitExceeded
from celery.signals import task_failure

from .. import logs
from ..context import ServiceContext, worker_context
from ..errors import JobFailed, client_message
from ..store.job_runs import JobRuns, JobTask, Outcome
from ..task_status import INTERNAL_ERROR

log = logging.getLogger(__name__)

#: A task's clean-up after a hard time limit: (the task, the arguments it was called with).
TimeLimitHandler = Callable[["ServiceTask", tuple[Any, ...]], None]


class ServiceTask(Task):
    """A task of this service."""

    throws = (JobFailed,)
    #: Set per task (a task option) when a killed run leaves something to settle.
    on_time_limit: TimeLimitHandler | None = None

    @property
    def ctx(self) -> ServiceContext:
        """The worker's context (built on first use, after the fork)."""
        return worker_context()

    def progress(self, fraction: float, status: str, **extra: Any) -> None:
        """Record how far the task is: a fraction from 0 to 1 and a sentence, and any counts."""
        self.update_state(state="PROGRESS", meta={"progress": fraction, "status": status, **extra})

    def run_leased(
        self,
        runs: JobRuns,
        job_id: str,
        args: Sequence[Any],
        work: Callable[[], dict[str, Any]],
        done_before: Callable[[], dict[str, Any]],
        give_up: Callable[[str], None],
    ) -> dict[str, Any]:
        """One delivery of the job ``job_id``: ``work()`` holding its lease, its outcome kept.

        A job already done answers ``done_before()``; one that failed raises its
        reason again. A delivery while a live run holds the lease is dropped
        (:class:`Ignore`). A start past ``[service] max_job_deliveries`` calls
        ``give_up(reason)`` (which records or removes what the job left) and fails.
        An exception of ``work`` fails the job; a process that dies leaves it to
        the sweep.
        """
        settled = runs.outcome(job_id)
        if settled is not None:
            if settled.status == "failed":
                raise JobFailed(settled.reason)
            return done_before()
        task = JobTask(self.name, list(args), self.request.id, logs.request_id())
        run = runs.begin(job_id, task)
        if run is None:
            log.info("%s job %s: another run holds it; this delivery is dropped", runs.kind, job_id)
            raise Ignore()
        if run.delivery > 1:
            log.warning(
                "%s job %s: start %d (a run before it stopped before finishing)",
                runs.kind,
                job_id,
                run.delivery,
            )
        with run:
            reason = runs.over_limit(run)
            if reason is not None:
                give_up(reason)
                runs.settle(job_id, Outcome("failed", reason))
                run.finished = True
                raise JobFailed(reason)
            try:
                result = work()
            except Exception as exc:
                runs.settle(job_id, Outcome("failed", client_message(exc) or INTERNAL_ERROR))
                run.finished = True
                raise
            runs.settle(job_id, Outcome("done"))
            run.finished = True
            return result


@task_failure.connect
def _settle_time_limit(
    sender: Task | None = None,
    exception: BaseException | None = None,
    args: tuple[Any, ...] | list[Any] = (),
    **_: Any,
) -> None:
    """A hard time limit killed a task's process: let the task settle what it left.

    Sent in the worker's main process, which killed the run (the message is acknowledged).
    """
    if not isinstance(sender, ServiceTask) or not isinstance(exception, TimeLimitExceeded):
        return
    settle = getattr(sender, "on_time_limit", None)  # bound: the task comes first
    if settle is not None:
        settle(tuple(args))


def settle_killed_job(runs: JobRuns, job_id: str, limit_seconds: float) -> str:
    """A hard time limit killed the job's process: it is failed now, never sent again.

    The reason is returned, for the task to record where its client reads it.
    """
    reason = f"{runs.kind} was stopped: over [service] task_time_limit_seconds = {limit_seconds:g}"
    runs.settle(job_id, Outcome("failed", reason))
    return reason
