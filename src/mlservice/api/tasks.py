"""``GET /resource/task/status/<taskid:task_id>``: follow asynchronous work you started."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, url_for

from .. import task_status
from ..errors import NotFound
from .auth import current_identity, require_token
from .services import services

bp = Blueprint("tasks", __name__, url_prefix="/resource/task")


@bp.get("/status/<taskid:task_id>")
@require_token()
def task_state(task_id: str) -> Response:
    """The task's state; 404 unless your account started it (admins see every task)."""
    ctx = services()
    owner_id = ctx.task_owners.owner_of(task_id)
    identity = current_identity()
    if owner_id is None or (owner_id != identity.account_id and not identity.is_admin):
        raise NotFound(f"no task {task_id!r} of yours")
    return jsonify(task_status.describe(ctx.celery.AsyncResult(task_id)))


def status_url(task_id: str) -> str:
    """Where a client follows ``task_id``."""
    return url_for("tasks.task_state", task_id=task_id)


def accepted(task_id: str, **fields: str | list[str]) -> tuple[Response, int, dict[str, str]]:
    """``202`` for work a Celery task does: ``{**fields, task_id, status_url}`` + ``Location``.

    The one shape of every 202 (init, training, scoring), so a client follows any of them alike.
    """
    location = status_url(task_id)
    return jsonify(**fields, task_id=task_id, status_url=location), 202, {"Location": location}
