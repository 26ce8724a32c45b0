"""Training callbacks (and registry webhooks): where they may go, how they are signed and sent.

The same rules serve every URL the service POSTs to on its own: a training's
``callback_url`` and a registered model's ``webhook_url``
(:mod:`mlservice.tasks.registry_tasks`); ``field`` names which in messages.

A callback URL must be http(s) and, unless ``[service] callback_allow_private``
(``MLSERVICE_CALLBACK_ALLOW_PRIVATE=1``) is on, resolve only to public
addresses: a callback must not become a way to make the service call into its
own network (SSRF). The address is checked when the model is requested and
again right before each delivery.

A delivery resolves the host once, checks every address it resolves to, and
connects to those checked addresses themselves (never to a second lookup of
the name, which DNS rebinding could point elsewhere); the ``Host`` header, the
TLS SNI and the certificate check keep the URL's own host name. Redirects are
never followed: a ``3xx`` answer is a failed delivery.

Each delivery carries a delivery id (:func:`delivery_id`), the same for every
attempt at one outcome of one model, in the ``X-MLService-Delivery`` header and
in the signed body as ``delivery_id``, so a receiver can drop duplicates, and
the id of the request that started the work in ``X-Request-ID`` (from the
log context, :mod:`mlservice.logs`), so both sides' logs can be matched.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .. import logs
from ..errors import Invalid

SIGNATURE_HEADER = "X-MLService-Signature"
TIMESTAMP_HEADER = "X-MLService-Timestamp"
DELIVERY_HEADER = "X-MLService-Delivery"
TIMEOUT_SECONDS = 10

#: ``host, port -> addresses`` (IP address strings), as :func:`system_resolver`.
Resolver = Callable[[str, int], Iterable[str]]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# NAT64's well-known prefix (RFC 6052): the IPv4 address is the last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_ALLOW_PRIVATE_FIX = "set MLSERVICE_CALLBACK_ALLOW_PRIVATE=1 to allow it"


class CallbackRefused(Invalid):
    """A callback URL the service will not call (422 when a training request names it)."""


class DeliveryFailed(Exception):
    """One attempt at delivering a callback failed (the task retries it with backoff)."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every TCP address ``host`` resolves to, in the resolver's order, once each."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _judged_as(address: IPAddress) -> list[IPAddress]:
    """The addresses that decide whether ``address`` may be called.

    An IPv4-mapped (``::ffff:a.b.c.d``) or NAT64 (``64:ff9b::a.b.c.d``) address
    reaches its IPv4 address, so it is judged as that one; a 6to4 address
    (``2002:...``) must pass both as itself and as the IPv4 address it wraps.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return [address.ipv4_mapped]
        if address in _NAT64:
            return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
        if address.sixtofour is not None:
            return [address, address.sixtofour]
    return [address]


def address_refusal(address: str | IPAddress, allow_private: bool) -> str | None:
    """Why a callback may not connect to ``address`` (a few words), or ``None`` if it may.

    Unspecified, multicast, reserved and link-local addresses (169.254.0.0/16
    holds cloud metadata services) are always refused; other non-public ones
    (loopback, private, shared, site-local, ...) unless ``allow_private``.
    """
    try:
        judged = _judged_as(ipaddress.ip_address(address))
    except ValueError:
        return "invalid"
    for candidate in judged:
        if candidate.is_unspecified:
            return "unspecified"
        if candidate.is_multicast:
            return "multicast"
        if candidate.is_reserved and not candidate.is_loopback:  # ::1 lies in reserved ::/8
            return "reserved"
        if candidate.is_link_local:
            return "link-local"
    if allow_private:
        return None
    for candidate in judged:
        site_local = isinstance(candidate, ipaddress.IPv6Address) and candidate.is_site_local
        if not candidate.is_global or site_local:
            return "non-public"
    return None


def check_address(
    host: str, address: str, allow_private: bool, field: str = "callback_url"
) -> None:
    """:class:`CallbackRefused` naming ``host``, ``address`` and the fix, unless allowed."""
    refusal = address_refusal(address, allow_private)
    if refusal is None:
        return
    shown = address
    if refusal != "invalid":
        ipv4 = _judged_as(ipaddress.ip_address(address))[-1]
        if isinstance(ipv4, ipaddress.IPv4Address) and str(ipv4) != address:
            shown = f"{address} (IPv4 {ipv4})"
    if refusal == "non-public":
        raise CallbackRefused(
            f"{field} host {host!r} resolves to non-public address {shown}; " + _ALLOW_PRIVATE_FIX
        )
    raise CallbackRefused(
        f"{field} host {host!r} resolves to {refusal} address {shown}, which a "
        f"{_kind(field)} can never use; point {field} at a host with public unicast addresses"
    )


def _kind(field: str) -> str:
    """What a URL field is for, in messages: ``callback``, ``webhook``."""
    return field.removesuffix("_url")


@dataclass(frozen=True)
class Target:
    """A checked callback URL: where to connect, and what to say to whom."""

    url: str
    scheme: str
    host: str  # the URL's host name: Host header, TLS SNI and certificate check
    port: int
    path: str  # the request target: path and query
    addresses: tuple[str, ...]  # every address ``host`` resolved to, each checked


def resolve(
    url: object,
    allow_private: bool,
    resolver: Resolver = system_resolver,
    field: str = "callback_url",
) -> Target:
    """Resolve the URL's host once and check every address; :class:`CallbackRefused` if refused."""
    if not isinstance(url, str):
        raise CallbackRefused(f"{field} must be a string")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackRefused(f"{field} {url!r} must be an http:// or https:// URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise CallbackRefused(f"{field} {url!r} has an invalid port (1 to 65535)") from None
    host = parts.hostname
    try:
        literal: str | None = str(ipaddress.ip_address(host))
    except ValueError:
        literal = None
    if literal is not None:
        addresses: tuple[str, ...] = (literal,)
    else:
        try:
            addresses = tuple(dict.fromkeys(resolver(host, port)))
        except (OSError, UnicodeError):
            addresses = ()
        if not addresses:
            raise CallbackRefused(f"{field} host {host!r} does not resolve")
    for address in addresses:
        check_address(host, address, allow_private, field)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, parts.scheme, host, port, path, addresses)


def check_url(
    url: object,
    allow_private: bool,
    resolver: Resolver = system_resolver,
    field: str = "callback_url",
) -> None:
    """Refuse URLs that are not http(s) or whose host resolves to an address not allowed."""
    resolve(url, allow_private, resolver, field)


def signature(body: bytes, timestamp: str, secret: str) -> str:
    """HMAC-SHA256 over ``timestamp.body``, as the receiver should recompute it."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def delivery_id(payload: dict[str, Any]) -> str:
    """The same id for every attempt at one outcome of one model: ``<model_id>:<status>``.

    A model is trained once and ends ``ready`` or ``failed``, so that pair names
    the outcome; retries, and a second run of the task after a worker crash,
    send the same id. A payload's own ``delivery_id`` is kept; any other
    payload gets a hash of its canonical JSON.
    """
    given = payload.get("delivery_id")
    if isinstance(given, str) and given:
        return given
    model_id, status = payload.get("model_id"), payload.get("status")
    if isinstance(model_id, str) and isinstance(status, str):
        return f"{model_id}:{status}"
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _connect(addresses: Sequence[str], port: int, timeout: float | None) -> socket.socket:
    """A TCP connection to the first of ``addresses`` that answers (all were checked)."""
    error: OSError | None = None
    for address in addresses:
        try:
            sock = socket.create_connection((address, port), timeout)
        except OSError as exc:
            error = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise error or OSError("no address to connect to")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to the checked addresses; the Host header keeps the URL's host name."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.addresses = target.addresses

    def connect(self) -> None:
        self.sock = _connect(self.addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """HTTPS to the checked addresses; SNI and the certificate check use the host name."""

    default_port = http.client.HTTPS_PORT

    def __init__(self, target: Target, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(target, timeout)
        self.context = context

    def connect(self) -> None:
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.host)


def deliver(
    url: str,
    payload: dict[str, Any],
    secret: str,
    allow_private: bool,
    resolver: Resolver = system_resolver,
    ssl_context: ssl.SSLContext | None = None,
    field: str = "callback_url",
) -> int:
    """POST the signed payload once; :class:`DeliveryFailed` unless the receiver answers 2xx.

    The payload gets its ``delivery_id`` (also sent as ``X-MLService-Delivery``).
    ``ssl_context`` (by default the system's trusted CAs, host name checked)
    verifies https receivers. ``field``: the URL's name in messages (``webhook_url``).
    """
    kind = _kind(field)
    try:
        target = resolve(url, allow_private, resolver, field)
    except CallbackRefused as exc:  # its name now resolves elsewhere: maybe not for long
        raise DeliveryFailed(exc.message) from None
    identifier = delivery_id(payload)
    body = json.dumps({**payload, "delivery_id": identifier}).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"ml-service-{kind}",
        "Connection": "close",
        DELIVERY_HEADER: identifier,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(body, timestamp, secret),
    }
    request_id = logs.request_id()
    if request_id is not None:
        headers[logs.REQUEST_ID_HEADER] = request_id
    connection: _PinnedHTTPConnection
    if target.scheme == "https":
        context = ssl_context or ssl.create_default_context()
        connection = _PinnedHTTPSConnection(target, TIMEOUT_SECONDS, context)
    else:
        connection = _PinnedHTTPConnection(target, TIMEOUT_SECONDS)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        with response:  # it owns the socket once the connection handed it over
            status, location = response.status, response.getheader("Location")
    except (http.client.HTTPException, OSError) as exc:
        raise DeliveryFailed(f"{kind} delivery to {url} failed: {exc}") from None
    finally:
        connection.close()
    if 200 <= status < 300:
        return status
    if 300 <= status < 400:
        where = f" to {location!r}" if location else ""
        raise DeliveryFailed(
            f"{kind} receiver {url} answered {status} (a redirect{where}); redirects are "
            f"not followed: set {field} to the URL that answers 2xx"
        )
    raise DeliveryFailed(f"{kind} receiver {url} answered {status}")
