"""``/resource/users``: admins create, list and delete accounts."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, url_for

from .. import accounts
from ..errors import BadRequest, Conflict
from .auth import current_identity, require_token
from .parsing import json_body
from .services import services

bp = Blueprint("users", __name__, url_prefix="/resource/users")


@bp.post("")
@require_token(admin=True)
def create_user() -> Response:
    """Create a user: ``{"username", "password", "role"}`` → 201."""
    body = json_body()
    if not isinstance(body, dict):
        raise BadRequest('send {"username": ..., "password": ..., "role": ...}')
    identity = accounts.create_user(
        services().store,
        body.get("username", ""),
        body.get("password", ""),
        body.get("role", "user"),
    )
    response = jsonify(username=identity.username, role=identity.role)
    response.status_code = 201
    response.headers["Location"] = url_for("users.list_users")
    return response


@bp.get("")
@require_token(admin=True)
def list_users() -> Response:
    """Every account and its role."""
    return jsonify(
        users=[
            {"username": u.username, "role": u.role} for u in accounts.list_users(services().store)
        ]
    )


@bp.delete("/<username:username>")
@require_token(admin=True)
def delete_user(username: str) -> tuple[str, int]:
    """Delete an account (not your own) → 204."""
    if username == current_identity().username:
        raise Conflict("you cannot delete your own account")
    accounts.delete_user(services().store, username)
    return "", 204
