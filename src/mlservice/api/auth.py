"""``GET /resource/auth`` (HTTP Basic → bearer token) and the decorator that checks tokens."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Response, g, jsonify, request

from .. import security
from ..errors import Forbidden, Unauthorized
from ..security import Identity
from ..store.user_records import Access
from .services import services

bp = Blueprint("auth", __name__, url_prefix="/resource")

View = TypeVar("View", bound=Callable[..., Any])


def _bearer_refusal(message: str) -> Unauthorized:
    challenge = f'Bearer realm="ml-service", error="invalid_token", error_description="{message}"'
    return Unauthorized(message, headers={"WWW-Authenticate": challenge})


def _basic_refusal(message: str) -> Unauthorized:
    """401 for missing or wrong Basic credentials, with the challenge only where it helps.

    A page's script (``fetch``, e.g. Swagger UI's "Try it out" on /docs) says
    so in ``Sec-Fetch-Mode``; a Basic challenge would make the browser open its
    own password dialog over the page, so scripts get the JSON message alone.
    """
    if request.headers.get("Sec-Fetch-Mode") in ("cors", "same-origin", "no-cors"):
        return Unauthorized(message)
    return Unauthorized(message, headers={"WWW-Authenticate": 'Basic realm="ml-service"'})


def bearer_claims() -> Identity:
    """The verified token's claims (no Redis yet); 401 when there is no valid token."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _bearer_refusal("missing bearer token: send 'Authorization: Bearer <token>'")
    try:
        return services().tokens.verify(token.strip())
    except security.TokenError as exc:
        raise _bearer_refusal(exc.message) from None


#: The 401 for a token issued before its user's password, role or account changed.
REVOKED = (
    "the token was revoked (password, role or account changed); get a new one from /resource/auth"
)


def admit(claimed: Identity, access: Access | None, admin: bool = False) -> None:
    """Set the request's identity from the user's current role and account id; 401/403 if
    refused.

    ``access`` (role, generation, account id) is read from Redis by the caller,
    so a route can fetch it in the same round trip as the data it needs (see
    the predict routes). A token whose generation is not the user's current
    one was issued before a password, role or account change, and one whose
    account id is not the user's was issued for an account since deleted: 401.
    """
    if access is None:
        raise _bearer_refusal("the token's user no longer exists")
    if claimed.generation != access.generation:  # signed claims: no secret to time
        raise _bearer_refusal(REVOKED)
    if claimed.account_id is not None and claimed.account_id != access.account_id:
        raise _bearer_refusal(REVOKED)
    g.identity = Identity(claimed.username, access.role, access.generation, access.account_id)
    if admin and not g.identity.is_admin:
        raise Forbidden("this needs an admin account")


def require_token(admin: bool = False) -> Callable[[View], View]:
    """Route decorator: a valid bearer token of a user that still exists (and is admin)."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            claimed = bearer_claims()
            admit(claimed, services().accounts.current_access(claimed.username), admin)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def current_identity() -> Identity:
    """The user the request's token speaks for (inside a ``require_token`` view)."""
    identity: Identity = g.identity
    return identity


def client_address() -> str:
    """The address of the client, as NGINX saw it: the failed-login counters go by it.

    NGINX sets ``X-Forwarded-For`` (appending its peer's address) and the app's
    ProxyFix takes that last entry, which a client cannot forge (see app.py);
    the API is reachable only through NGINX.
    """
    return request.remote_addr or "unknown"


@bp.get("/auth")
def issue_token() -> Response:
    """Exchange HTTP Basic credentials for a bearer token.

    The check is throttled per account and client address, and per account
    (:mod:`mlservice.login_throttle`), and waits for a password hashing turn
    (:mod:`mlservice.password_hashing`): 429 with ``Retry-After`` past either.
    """
    credentials = request.authorization
    if credentials is None or credentials.type != "basic" or not credentials.username:
        raise _basic_refusal("send a user name and password with HTTP Basic")
    ctx = services()
    identity = ctx.accounts.login(
        credentials.username,
        credentials.password or "",
        client_address(),
        ctx.settings.auth.delegate_url,
    )
    if identity is None:
        raise _basic_refusal("wrong user name or password")
    token, seconds = security.issue_token(identity, ctx.secret, ctx.settings.auth.token_lifetime)
    response = jsonify(token=token, token_type="Bearer", expires_in=seconds)
    response.headers["Cache-Control"] = "no-store"
    return response
