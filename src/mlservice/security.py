"""Bearer tokens (JWT, HS256) and the service secret that signs them.

Tokens carry ``sub`` (user name), ``role``, ``iat``, ``exp`` and ``jti``.
Verification pins HS256, so a token claiming ``alg=none`` or an asymmetric
algorithm is refused before its signature is even looked at.
"""

from __future__ import annotations

import math
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt
import redis

from .redis_client import key

ALGORITHM = "HS256"
SECRET_KEY = key("secret")


class TokenError(Exception):
    """A bearer token was refused; the message says why, for the client."""


@dataclass(frozen=True)
class Identity:
    """Who a verified token speaks for."""

    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def service_secret(store: redis.Redis, configured: str | None) -> str:
    """The configured secret, else the one generated at first start and kept in Redis.

    ``SET NX`` makes the first process to ask the one that chooses it, so every
    Gunicorn worker, Celery worker and restart shares the same secret.
    """
    if configured:
        return configured
    store.set(SECRET_KEY, secrets.token_hex(32), nx=True)
    value = store.get(SECRET_KEY)
    return value.decode() if isinstance(value, bytes) else value


def issue_token(identity: Identity, secret: str, lifetime: timedelta) -> tuple[str, int]:
    """A signed token and its lifetime in whole seconds (rounded up, at least 1)."""
    now = int(time.time())
    seconds = max(1, math.ceil(lifetime.total_seconds()))
    claims = {
        "sub": identity.username,
        "role": identity.role,
        "iat": now,
        "exp": now + seconds,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), seconds


def verify_token(token: str, secret: str) -> Identity:
    """Check signature, algorithm and expiry; raise :class:`TokenError` saying which failed."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise TokenError("malformed bearer token: not a JSON Web Token") from None
    if header.get("alg") != ALGORITHM:
        raise TokenError(f"token algorithm {header.get('alg')!r} is not accepted; only HS256")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "role", "iat", "exp", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("bearer token has expired; get a new one from /resource/auth") from None
    except jwt.InvalidSignatureError:
        raise TokenError("bearer token signature is invalid (tampered or foreign token)") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"bearer token lacks the {exc.claim!r} claim") from None
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"malformed bearer token: {exc}") from None
    return Identity(username=str(claims["sub"]), role=str(claims["role"]))
