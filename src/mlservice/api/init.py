"""``GET /resource/init``: train the default model on a Celery worker."""

from __future__ import annotations

import time
import uuid
from typing import Any

from celery.result import AsyncResult
from flask import Blueprint, Response

from .. import task_status
from ..celery_app import TaskName
from ..errors import ServiceError, StillRunning
from .auth import current_identity, require_token
from .parsing import flag
from .services import services
from .tasks import accepted, status_url

bp = Blueprint("init", __name__, url_prefix="/resource")

_POLL_SECONDS = 0.2


@bp.get("/init")
@require_token()
def init() -> tuple[Response, int, dict[str, str]] | tuple[str, int]:
    """Enqueue the init task; ``?async=true`` → 202 ``{task_id, status_url}`` + Location,
    else wait → 204."""
    ctx = services()
    asynchronous = flag("async")  # a bad flag is refused before anything is queued
    task_id = ctx.enqueue(
        TaskName.INIT_SERVICE,
        task_id=str(uuid.uuid4()),
        owner=current_identity().require_account_id(),
    )
    if asynchronous:
        return accepted(task_id)
    location = status_url(task_id)
    result: AsyncResult[Any] = AsyncResult(task_id, app=ctx.celery)
    # Poll the result backend instead of blocking on its pub/sub consumer,
    # which Celery does not share safely between a worker's threads.
    deadline = time.monotonic() + ctx.settings.service.init_timeout_seconds
    while not result.ready():
        if time.monotonic() > deadline:
            raise StillRunning(
                "init is still running; follow the Location header", headers={"Location": location}
            )
        time.sleep(_POLL_SECONDS)
    if result.failed():
        raise ServiceError(f"init failed: {task_status.failure_text(task_id, result.result)}")
    return "", 204
