"""The one base class of the service's Celery tasks: progress, time limits, failures.

* :meth:`ServiceTask.progress` records how far a task is as its state, which
  ``GET /resource/task/status/<id>`` shows;
* a hard time limit kills a task's process: Celery then reports the failure in
  the worker's main process, where the task's ``on_time_limit`` (a task option,
  ``@app.task(base=ServiceTask, on_time_limit=...)``, a function of the task and
  the arguments it was called with) settles what the task left half done (a
  model ``training``, a half-written file);
* :class:`~mlservice.errors.JobFailed` is an expected outcome (``throws``):
  Celery records it without a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Task
from celery.exceptions import TimeLimitExceeded
from celery.signals import task_failure

from ..context import ServiceContext, worker_context
from ..errors import JobFailed

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
