"""Bearer tokens (JWT, HS256) and the service secret that signs them.

Tokens carry ``sub`` (user name), ``role``, ``iat``, ``exp``, ``jti``,
``gen``: the user's generation when the token was issued, and ``aid``: the
account id (see :mod:`mlservice.accounts` for both). Changing the user's
password or role, or deleting the account, gives the user a new generation,
and a token whose ``gen`` is not the user's current one is refused
(:func:`mlservice.api.auth.admit`), so such changes revoke every token issued
before them. Verification pins HS256, so a token claiming ``alg=none`` or an
asymmetric algorithm is refused before its signature is even looked at.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt
import redis

from .errors import Unauthorized
from .redis_client import key, text

ALGORITHM = "HS256"
SECRET_KEY = key("secret")


class TokenError(Unauthorized):
    """A bearer token was refused; the message says why, for the client."""


@dataclass(frozen=True)
class Identity:
    """Who a verified token speaks for.

    ``generation``: the account's generation the token was issued under (its
    ``gen`` claim), or the account's current one when read from Redis;
    ``None`` for a token without the claim, which is never admitted.

    ``account_id``: the account's immutable id (claim ``aid``), what everything
    the user owns is keyed by; a name deleted and created again gets a new one.
    Once a request is admitted it is the one stored in Redis; ``None`` only for
    a token issued before account ids (admitted on its generation alone).
    """

    username: str
    role: str
    generation: str | None = None
    account_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def require_account_id(self) -> str:
        """The account id, to key what this identity creates or starts by.

        Every admitted identity has one (:func:`mlservice.api.auth.admit` sets
        it from Redis); an identity without one may own nothing.
        """
        if self.account_id is None:
            raise TokenError(f"no account id is known for {self.username!r}; log in again")
        return self.account_id


def service_secret(store: redis.Redis, configured: str | None) -> str:
    """The configured secret, else the one generated at first start and kept in Redis.

    ``SET NX`` makes the first process to ask the one that chooses it, so every
    Gunicorn worker, Celery worker and restart shares the same secret.
    """
    if configured:
        return configured
    store.set(SECRET_KEY, secrets.token_hex(32), nx=True)
    return str(text(store.get(SECRET_KEY)))


def issue_token(identity: Identity, secret: str, lifetime: timedelta) -> tuple[str, int]:
    """A signed token and its lifetime in whole seconds (rounded up, at least 1).

    The token carries ``identity.generation`` as its ``gen`` claim and
    ``identity.account_id`` as ``aid``; the accounts always give both (an
    identity without a generation makes a token that is never admitted).
    """
    now = int(time.time())
    seconds = max(1, math.ceil(lifetime.total_seconds()))
    claims: dict[str, object] = {
        "sub": identity.username,
        "role": identity.role,
        "iat": now,
        "exp": now + seconds,
        "jti": uuid.uuid4().hex,
    }
    if identity.generation is not None:
        claims["gen"] = identity.generation
    if identity.account_id is not None:
        claims["aid"] = identity.account_id
    return jwt.encode(claims, secret, algorithm=ALGORITHM), seconds


def _verified_claims(token: str, secret: str) -> tuple[Identity, float]:
    """The token's identity and expiry (Unix seconds), once signature and claims check out."""
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
    generation, account_id = claims.get("gen"), claims.get("aid")
    for name, value in (("gen", generation), ("aid", account_id)):
        if value is not None and not isinstance(value, str):
            raise TokenError(f"malformed bearer token: its {name!r} claim is not a string")
    identity = Identity(str(claims["sub"]), str(claims["role"]), generation, account_id)
    return identity, float(claims["exp"])


class VerifiedTokens:
    """Tokens this process has verified, until they expire: a repeat skips the HMAC and JSON work.

    Decoding a JWT costs about a quarter of a millisecond, a third of a cached
    prediction. A token is the same bytes on every request of a client, so the
    identical string, once verified under the same secret, is still valid
    until its ``exp``. Bounded; the oldest entries go first.
    """

    def __init__(self, secret: str, size: int = 4096) -> None:
        self._secret = secret
        self._size = size
        self._seen: dict[str, tuple[Identity, float]] = {}
        self._lock = threading.Lock()

    def verify(self, token: str) -> Identity:
        """Check signature, algorithm and expiry (:class:`TokenError` saying which failed),
        from memory when this token was verified before."""
        seen = self._seen.get(token)
        if seen is not None and time.time() < seen[1]:
            return seen[0]
        identity, expires = _verified_claims(token, self._secret)
        with self._lock:
            self._seen[token] = (identity, expires)
            while len(self._seen) > self._size:
                self._seen.pop(next(iter(self._seen)))
        return identity
