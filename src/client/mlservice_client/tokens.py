"""Bearer tokens on the client side: who they speak for, and when to get a new one.

The service's tokens are JWTs whose ``iat``/``exp`` claims say when they were
issued and when they stop working. The client reads them (without verifying:
that is the service's job) so it can fetch a fresh token a little before the
old one expires, instead of sending a request bound to come back ``401``.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

#: Renew a token when less than this many seconds are left (or a tenth of its lifetime, if less).
REFRESH_MARGIN_SECONDS = 30.0


def claims(token: str) -> dict[str, Any]:
    """The token's claims, unverified; ``{}`` for something that is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        decoded = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def expiry_of(token: str) -> float | None:
    """When the token expires, in Unix seconds (``None``: it does not say)."""
    return _number(claims(token).get("exp"))


def lifetime_of(token: str) -> float | None:
    """Seconds from the token's issue to its expiry (``None``: it does not say)."""
    found = claims(token)
    issued, expires = _number(found.get("iat")), _number(found.get("exp"))
    if issued is None or expires is None:
        return None
    return expires - issued


def subject_of(token: str) -> str | None:
    """The user the token speaks for (its ``sub`` claim)."""
    sub = claims(token).get("sub")
    return sub if isinstance(sub, str) else None


def needs_refresh(token: str, now: float) -> bool:
    """Whether to fetch a new token before sending this one.

    True within the refresh margin of its expiry: 30 s, or a tenth of its
    lifetime for short-lived tokens, so a 2-second token is still used while
    it works. A token that does not say when it expires is sent as it is.
    """
    expires = expiry_of(token)
    if expires is None:
        return False
    lifetime = lifetime_of(token)
    margin = REFRESH_MARGIN_SECONDS
    if lifetime is not None:
        margin = min(margin, lifetime / 10)
    return expires - now < margin
