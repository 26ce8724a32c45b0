"""Training callbacks: where they may go, how they are signed and sent.

A callback URL must be http(s) and, unless ``[service] callback_allow_private``
(``MLSERVICE_CALLBACK_ALLOW_PRIVATE=1``) is on,
resolve only to public addresses: a callback must not become a way to make
the service call into its own network (SSRF). The address is checked when
the model is requested and again right before each delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from ..errors import Invalid

SIGNATURE_HEADER = "X-MLService-Signature"
TIMESTAMP_HEADER = "X-MLService-Timestamp"
TIMEOUT_SECONDS = 10


class CallbackError(Invalid):
    """A callback URL that is refused (422), or a delivery that failed (retried)."""


def check_url(url: object, allow_private: bool) -> None:
    """Refuse URLs that are not http(s) or that point at private or loopback hosts."""
    if not isinstance(url, str):
        raise CallbackError("callback_url must be a string")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackError(f"callback_url {url!r} must be an http:// or https:// URL")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 80, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise CallbackError(f"callback_url host {parts.hostname!r} does not resolve") from None
    if allow_private:
        return
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise CallbackError(
                f"callback_url host {parts.hostname!r} resolves to non-public address "
                f"{address}; set MLSERVICE_CALLBACK_ALLOW_PRIVATE=1 to allow it"
            )


def signature(body: bytes, timestamp: str, secret: str) -> str:
    """HMAC-SHA256 over ``timestamp.body``, as the receiver should recompute it."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def deliver(url: str, payload: dict[str, Any], secret: str, allow_private: bool) -> int:
    """POST the signed payload once; :class:`CallbackError` unless the receiver answers 2xx."""
    check_url(url, allow_private)
    body = json.dumps(payload).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "ml-service-callback",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(body, timestamp, secret),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        raise CallbackError(f"callback receiver answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise CallbackError(f"callback delivery failed: {exc}") from None
