"""Who started which Celery task, and how a task's state reads to its owner.

Celery's result backend knows a task's state but not its owner, so the API
records the owner when it enqueues; others get 404 for that task id.
"""

from __future__ import annotations

import logging
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


class TaskOwners:
    """Who started each task, kept as long as Celery keeps its result."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self.redis = redis_client

    def record(self, task_id: str, username: str) -> None:
        """Remember that ``username`` started ``task_id``."""
        self.redis.set(key("task", task_id, "owner"), username, ex=OWNER_TTL_SECONDS)

    def owner_of(self, task_id: str) -> str | None:
        """The user who started the task, or ``None`` if unknown (or expired)."""
        return text(self.redis.get(key("task", task_id, "owner"))) or None


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
