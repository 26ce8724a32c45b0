"""``GET /resource/task/status/<task_id>``: follow asynchronous work you started."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from .. import task_status as status
from ..errors import NotFound
from .auth import current_identity, require_token
from .services import services

bp = Blueprint("tasks", __name__, url_prefix="/resource/task")


@bp.get("/status/<task_id>")
@require_token()
def task_status(task_id: str) -> Response:
    """The task's state; 404 unless you started it (admins see every task)."""
    ctx = services()
    owner = status.owner_of(ctx.store, task_id)
    identity = current_identity()
    if owner is None or (owner != identity.username and not identity.is_admin):
        raise NotFound(f"no task {task_id!r} of yours")
    return jsonify(status.describe(ctx.celery.AsyncResult(task_id)))
