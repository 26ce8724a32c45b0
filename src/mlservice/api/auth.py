"""``GET /resource/auth`` (HTTP Basic → bearer token) and the decorators that check tokens."""

from __future__ import annotations

import functools
from typing import Any, Callable

from flask import Blueprint, g, jsonify, request

from .. import security, users
from ..app import services
from ..security import Identity
from .errors import error_response

bp = Blueprint("auth", __name__, url_prefix="/resource")


def _unauthorized(message: str):
    challenge = f'Bearer realm="ml-service", error="invalid_token", error_description="{message}"'
    return error_response(401, message, {"WWW-Authenticate": challenge})


def bearer_claims() -> tuple[Identity | None, Any]:
    """The verified token's claims (no Redis yet), or ``(None, the 401 to send)``."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, _unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    try:
        return services().tokens.verify(token.strip()), None
    except security.TokenError as exc:
        return None, _unauthorized(str(exc))


def admit(claimed: Identity, role: str | None, admin: bool = False) -> Any:
    """Set the request's identity from the user's current role; the 401/403 to send, or None.

    ``role`` is read from Redis by the caller, so a route can fetch it in the
    same round trip as the data it needs (see the predict routes).
    """
    if role is None:
        return _unauthorized("the token's user no longer exists")
    g.identity = Identity(claimed.username, role)
    if admin and not g.identity.is_admin:
        return error_response(403, "this needs an admin account")
    return None


def require_token(admin: bool = False) -> Callable:
    """Route decorator: a valid bearer token of a user that still exists (and is admin)."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any):
            claimed, refusal = bearer_claims()
            if refusal is None:
                refusal = admit(claimed, users.current_role(services().store, claimed.username),
                                admin)
            if refusal is not None:
                return refusal
            return view(*args, **kwargs)

        return wrapped

    return decorator


def current_identity() -> Identity:
    """The user the request's token speaks for (inside a ``require_token`` view)."""
    return g.identity


@bp.get("/auth")
def issue_token():
    """Exchange HTTP Basic credentials for a bearer token."""
    credentials = request.authorization
    if credentials is None or credentials.type != "basic" or not credentials.username:
        return error_response(401, "send a user name and password with HTTP Basic",
                              {"WWW-Authenticate": 'Basic realm="ml-service"'})
    ctx = services()
    if ctx.settings.delegated_auth_url:
        identity = users.authenticate_delegated(ctx.store, ctx.settings.delegated_auth_url,
                                                credentials.username, credentials.password or "")
    else:
        identity = users.authenticate(ctx.store, credentials.username, credentials.password or "")
    if identity is None:
        return error_response(401, "wrong user name or password",
                              {"WWW-Authenticate": 'Basic realm="ml-service"'})
    token, seconds = security.issue_token(identity, ctx.secret, ctx.settings.token_lifetime)
    response = jsonify(token=token, token_type="Bearer", expires_in=seconds)
    response.headers["Cache-Control"] = "no-store"
    return response
