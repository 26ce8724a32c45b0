"""``GET /resource/init``: train the default model on a Celery worker."""

from __future__ import annotations

import time

from flask import Blueprint, url_for

from .. import task_registry, tasks
from ..app import services
from .auth import current_identity, require_token
from .errors import error_response
from .inputs import flag

bp = Blueprint("service", __name__, url_prefix="/resource")

_POLL_SECONDS = 0.2


@bp.get("/init")
@require_token()
def init():
    """Enqueue the init task; ``?async=true`` → 202 + Location, else wait → 204."""
    ctx = services()
    asynchronous = flag("async")  # a bad flag is refused before anything is queued
    result = tasks.init_service.apply_async()
    task_registry.record_owner(ctx.store, result.id, current_identity().username)
    location = url_for("tasks.task_status", task_id=result.id)
    if asynchronous:
        return "", 202, {"Location": location}
    # Poll the result backend instead of blocking on its pub/sub consumer,
    # which Celery does not share safely between a worker's threads.
    deadline = time.monotonic() + ctx.settings.init_timeout
    while not result.ready():
        if time.monotonic() > deadline:
            return error_response(504, "init is still running; follow the Location header",
                                  {"Location": location})
        time.sleep(_POLL_SECONDS)
    if result.failed():
        return error_response(500, f"init failed: {type(result.result).__name__}: "
                                   f"{result.result}")
    return "", 204
