"""Who started which Celery task, and how a task's state reads to its owner.

Celery's result backend knows a task's state but not its owner, so the API
records the owner's account id (:mod:`mlservice.accounts`) when it enqueues,
at ``mlservice:task:<id>:account``; other accounts get 404 for that task id,
a user name deleted and created again included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis
from celery.result import AsyncResult

from .errors import client_message
from .redis_client import key, text

log = logging.getLogger(__name__)

#: What a client reads of a task that failed on an error of the service's own.
INTERNAL_ERROR = (
    "the task failed on an error in the service (logged with its task id): start it again, "
    "and if it fails again, give the task id to the service's operator"
)

OWNER_TTL_SECONDS = 7 * 24 * 3600  # as long as Celery keeps the result

_STATUS_TEXT = {
    "PENDING": "waiting for a worker",
    "STARTED": "running",
    "RETRY": "failed once, will be retried",
    "REVOKED": "cancelled",
}


def _owner_key(task_id: str) -> str:
    return key("task", task_id, "account")


#: Where the owner's user name was kept before account ids (moved by adopt_legacy_owners).
_LEGACY_OWNER_PATTERN = key("task", "*", "owner")


class TaskOwners:
    """Which account started each task, kept as long as Celery keeps its result."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self.redis = redis_client

    def record(self, task_id: str, account_id: str) -> None:
        """Remember that the account ``account_id`` started ``task_id``."""
        self.redis.set(_owner_key(task_id), account_id, ex=OWNER_TTL_SECONDS)

    def owner_of(self, task_id: str) -> str | None:
        """The account id of the task's owner, or ``None`` if unknown (or expired)."""
        return text(self.redis.get(_owner_key(task_id))) or None

    def adopt_legacy_owners(self, account_of: Callable[[str], str]) -> int:
        """Key each task owner stored by user name (before account ids) by ``account_of(name)``,
        keeping its expiry; how many there were. Doing it again finds none."""
        adopted = 0
        for raw_key in self.redis.scan_iter(match=_LEGACY_OWNER_PATTERN, count=1000):
            legacy_key = str(text(raw_key))
            task_id = legacy_key.split(":")[-2]
            pipe = self.redis.pipeline(transaction=False)
            pipe.get(legacy_key)
            pipe.pttl(legacy_key)
            name, ttl_ms = pipe.execute()
            if name is not None:
                expiry_ms = ttl_ms if ttl_ms > 0 else OWNER_TTL_SECONDS * 1000
                owner = account_of(str(text(name)))
                self.redis.set(_owner_key(task_id), owner, px=expiry_ms, nx=True)
                adopted += 1
            self.redis.delete(legacy_key)
        return adopted


def describe(result: AsyncResult) -> dict[str, Any]:
    """The task's state as the status endpoint returns it."""
    state = result.state
    info = result.info
    done = state in ("SUCCESS", "FAILURE", "REVOKED")
    status: dict[str, Any] = {"task_id": result.id, "state": state, "done": done}
    if state == "PROGRESS" and isinstance(info, dict):
        status["progress"] = float(info.get("progress", 0.0))
        status["status"] = str(info.get("status", "running"))
        for count in ("rows_done", "rows_total"):  # batch scoring counts rows
            if isinstance(info.get(count), int):
                status[count] = info[count]
    elif state == "SUCCESS":
        status["progress"] = 1.0
        status["status"] = "finished"
        status["result"] = info
    elif state == "FAILURE":
        status["progress"] = 1.0
        status["status"] = "failed"
        status["error"] = failure_text(result.id, info)
    else:
        status["progress"] = 0.0
        status["status"] = _STATUS_TEXT.get(state, state.lower())
    return status


def failure_text(task_id: str, error: object) -> str:
    """What a client may read of a failed task: the message of an expected failure or a
    refusal (what the model's or data set's ``error`` says too); for anything else a
    plain sentence, the error itself logged (with the request id) for the operator."""
    message = client_message(error) if isinstance(error, BaseException) else None
    if message is None:
        log.warning("task %s failed on %r", task_id, error)
        return INTERNAL_ERROR
    return message
