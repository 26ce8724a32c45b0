"""``GET /resource/task/status/<task_id>``: follow asynchronous work you started."""

from __future__ import annotations

from flask import Blueprint, jsonify

from .. import task_registry
from ..app import services
from ..celery_app import app as celery
from .auth import current_identity, require_token
from .errors import error_response

bp = Blueprint("tasks", __name__, url_prefix="/resource/task")


@bp.get("/status/<task_id>")
@require_token()
def task_status(task_id: str):
    """The task's state; 404 unless you started it (admins see every task)."""
    owner = task_registry.owner_of(services().store, task_id)
    identity = current_identity()
    if owner is None or (owner != identity.username and not identity.is_admin):
        return error_response(404, f"no task {task_id!r} of yours")
    return jsonify(task_registry.describe(celery.AsyncResult(task_id)))
