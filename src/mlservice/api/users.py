"""``/resource/users``: admins create, list and delete accounts."""

from __future__ import annotations

from flask import Blueprint, jsonify, url_for

from .. import users
from ..app import services
from .auth import current_identity, require_token
from .errors import error_response
from .inputs import json_body

bp = Blueprint("users", __name__, url_prefix="/resource/users")


@bp.post("")
@require_token(admin=True)
def create_user():
    """Create a user: ``{"username", "password", "role"}`` → 201."""
    body = json_body()
    if not isinstance(body, dict):
        return error_response(400, 'send {"username": ..., "password": ..., "role": ...}')
    try:
        identity = users.create_user(services().store, body.get("username"),
                                     body.get("password"), body.get("role", "user"))
    except users.UserExists as exc:
        return error_response(409, str(exc))
    except users.UserError as exc:
        return error_response(422, str(exc))
    response = jsonify(username=identity.username, role=identity.role)
    response.status_code = 201
    response.headers["Location"] = url_for("users.list_users")
    return response


@bp.get("")
@require_token(admin=True)
def list_users():
    """Every account and its role."""
    return jsonify(users=[{"username": u.username, "role": u.role}
                          for u in users.list_users(services().store)])


@bp.delete("/<username>")
@require_token(admin=True)
def delete_user(username: str):
    """Delete an account (not your own) → 204."""
    if username == current_identity().username:
        return error_response(409, "you cannot delete your own account")
    try:
        users.delete_user(services().store, username)
    except users.UserNotFound as exc:
        return error_response(404, str(exc))
    return "", 204
