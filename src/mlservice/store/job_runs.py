"""Scoring and profiling jobs under leases, like training runs: a dead worker's job goes again.

Celery delivers a task whose worker died again only after the broker's
visibility timeout (twice the task time limit: hours), and a scoring job
killed half-way left its partial file behind. So a job of these kinds holds a
lease (:mod:`.leases`) while it runs, and keeps beside it what is needed to
send it again: its task's name, arguments, id and the request id of the
request that started it (:class:`JobTask`). The sweep (``celery beat``, every
few seconds) claims the jobs whose lease lapsed or whose holder died, removes
what they left half-written, and sends each again under the same task id (a
client following its ``status_url`` sees the new run) and request id (its log
lines still name the request). Every start is counted; a job started more than
``[service] max_job_deliveries`` times is settled ``failed`` with the reason.

A job ends *settled* (:class:`Outcome`: done, or failed with its reason), kept
for a week: the broker may still hand out its first message hours later, and
that delivery must answer the outcome again, not do the work a second time.

Keys, for a kind ``<kind>`` (``scoring``, ``profiling``) and a job id (the
scoring job's output data set, the profiled data set): the lease keys of
:mod:`.leases`, the running set ``mlservice:<kind>:running``,
``mlservice:<kind>:<id>:task`` (:class:`JobTask`, JSON) and
``mlservice:<kind>:<id>:outcome`` (:class:`Outcome`, JSON).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

import msgspec
import redis

from ..redis_client import key
from .leases import LeaseHolder, Leases

log = logging.getLogger(__name__)

#: How long a job's task and outcome are kept: past any redelivery of its first message.
KEEP_SECONDS = 7 * 24 * 3600


class JobTask(msgspec.Struct, frozen=True):
    """What sends a job again: its Celery task's name, arguments and id, and its request id."""

    name: str
    args: list[Any]
    task_id: str | None = None
    request_id: str | None = None


class Outcome(msgspec.Struct, frozen=True):
    """How a job ended: ``done``, or ``failed`` with the reason its task gave."""

    status: Literal["done", "failed"]
    reason: str = ""


class JobRuns:
    """The runs of one kind of job: leases, the task to send again, and outcomes."""

    def __init__(self, redis_client: redis.Redis, kind: str, max_deliveries: int) -> None:
        self.redis = redis_client
        self.kind = kind
        #: ``[service] max_job_deliveries``: starts allowed before a job is failed.
        self.max_deliveries = max_deliveries
        self.leases = Leases(redis_client, kind, key(kind, "running"))
        self._task_decoder = msgspec.json.Decoder(JobTask)
        self._outcome_decoder = msgspec.json.Decoder(Outcome)

    def _task_key(self, job_id: str) -> str:
        return key(self.kind, job_id, "task")

    def _outcome_key(self, job_id: str) -> str:
        return key(self.kind, job_id, "outcome")

    def begin(self, job_id: str, task: JobTask) -> LeaseHolder | None:
        """Take the job's lease for this delivery and keep its task; ``None`` if a live run
        has it. The holder's :attr:`~.leases.LeaseHolder.delivery` counts the starts."""
        run = self.leases.begin(job_id)
        if run is not None:
            self.redis.set(self._task_key(job_id), msgspec.json.encode(task), ex=KEEP_SECONDS)
        return run

    def over_limit(self, run: LeaseHolder) -> str | None:
        """Why the job is failed rather than started again, if this start is one too many."""
        if run.delivery <= self.max_deliveries:
            return None
        return (
            f"{self.kind} was started {run.delivery - 1} times and its worker stopped each time "
            "before it finished (killed, out of memory, or shut down); [service] "
            f"max_job_deliveries = {self.max_deliveries} allows no more"
        )

    def outcome(self, job_id: str) -> Outcome | None:
        """How the job ended, if it has."""
        raw = self.redis.get(self._outcome_key(job_id))
        return None if raw is None else self._outcome_decoder.decode(raw)

    def settle(self, job_id: str, outcome: Outcome) -> None:
        """The job ended: its outcome is kept; its lease, task and running entry go."""
        pipe = self.redis.pipeline()
        pipe.set(self._outcome_key(job_id), msgspec.json.encode(outcome), ex=KEEP_SECONDS)
        pipe.delete(self._task_key(job_id), self.leases.lease_key(job_id))
        pipe.expire(self.leases.deliveries_key(job_id), KEEP_SECONDS)
        pipe.zrem(self.leases.running_key, job_id)
        pipe.execute()

    def task(self, job_id: str) -> JobTask | None:
        """The job's task as its last start kept it."""
        raw = self.redis.get(self._task_key(job_id))
        return None if raw is None else self._task_decoder.decode(raw)

    def sweep(
        self, resend: Callable[[JobTask], None], remove_partial: Callable[[str], None]
    ) -> list[str]:
        """Send again every job whose run died (lease lapsed, or its holder is a dead process
        of this host), after removing what it left half-written; the jobs sent.

        Each is claimed by exactly one sweeper. A job settled meanwhile, or whose task
        is gone, is left alone. If ``resend`` fails, the job goes back in the running
        set for the next sweep.
        """
        sent = []
        for job_id in self.leases.expired():
            task = self.task(job_id)
            if task is None or self.outcome(job_id) is not None:
                continue
            log.warning(
                "%s job %s: its run stopped before finishing; sent again (task %s)",
                self.kind,
                job_id,
                task.task_id,
            )
            try:
                remove_partial(job_id)
                resend(task)
            except BaseException:
                self.leases.mark_running(job_id)  # the next sweep tries again
                raise
            sent.append(job_id)
        return sent
