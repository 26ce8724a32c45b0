"""The Celery worker's process pool: prefork, with a free process that stays free after a
broker reconnect (``worker_pool`` in :mod:`mlservice.celery_app`).

Celery 5.6.3 (pinned: 5.7.0 dies when Redis goes away, see pyproject.toml)
forgets which pool processes are busy when the broker connection drops: on
reconnect, ``AsynPool.flush()`` empties its set of busy processes, although
processes still run the tasks they had accepted. Its fair scheduler then
writes the next task into the pipe of a process that is busy (with a training
of an hour, say) while another process idles, and the task waits for the
long one to end (Celery issue #7515, fixed upstream after 5.6.3).
Measured here: a training sent after a Redis restart stayed ``queued`` for
as long as the test waited, with the second pool process idle.

:class:`ReconnectSafeAsynPool` marks those processes busy again after the
flush: the processes whose accepted job is still running. Remove this module
(and ``worker_pool``) once the pinned Celery both survives a Redis restart and
keeps its busy processes.
"""

from __future__ import annotations

from typing import Any

from celery.concurrency.asynpool import AsynPool
from celery.concurrency.prefork import TaskPool as PreforkTaskPool


class ReconnectSafeAsynPool(AsynPool):
    """Celery's asynchronous prefork pool, whose busy processes stay busy across a flush."""

    def flush(self) -> None:
        """Celery's flush, then the processes still running an accepted job are busy again."""
        super().flush()
        pool: Any = self  # Celery's private state, which its type stubs do not declare
        pool._busy_workers.update(self._running_process_fds())

    def _running_process_fds(self) -> set[int]:
        """The input pipes of the live processes running a job they accepted."""
        pool: Any = self
        running = set()
        for job in tuple(pool._cache.values()):
            process: Any = getattr(job, "_write_to", None)
            if job._accepted and not job.ready() and process is not None:
                if process._is_alive() and process.inqW_fd in pool._all_inqueues:
                    running.add(process.inqW_fd)
        return running


class TaskPool(PreforkTaskPool):
    """The prefork pool (``-P prefork``) over :class:`ReconnectSafeAsynPool`."""

    Pool = ReconnectSafeAsynPool
