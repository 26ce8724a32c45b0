"""When to try again: what is safe to repeat, and how long to wait between polls and retries.

Only failures that cannot have changed anything on the service are retried:
a connection that never opened (any method), a dropped connection on an
idempotent method, and ``503`` with ``Retry-After`` (NGINX or the API saying
"come back later" before doing the work). Everything else is the caller's to
decide, because a repeated ``POST`` could train a model twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import requests

from .errors import WaitTimeout

T = TypeVar("T")

#: Methods that change nothing, or the same thing however often they are sent.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

#: The longest a Retry-After is honoured; a longer one ends the retries instead.
MAX_RETRY_AFTER = 60.0


def delays(first: float = 0.25, factor: float = 1.6, cap: float = 5.0) -> Iterator[float]:
    """Poll intervals that grow from ``first`` by ``factor`` up to ``cap`` (then stay there)."""
    delay = first
    while True:
        yield delay
        delay = min(cap, delay * factor)


def poll(
    fetch: Callable[[], T],
    finished: Callable[[T], bool],
    timeout: float | None,
    what: str,
    on_each: Callable[[T], None] | None = None,
    cap: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fetch()`` until ``finished(value)``, waiting longer between calls; that value.

    ``on_each`` sees every value (a progress bar follows it). After ``timeout``
    seconds (``None``: no limit) :class:`WaitTimeout` names ``what``: the work
    goes on in the service, only the waiting stops.
    """
    deadline = None if timeout is None else clock() + timeout
    for delay in delays(cap=cap):
        value = fetch()
        if on_each is not None:
            on_each(value)
        if finished(value):
            return value
        if deadline is not None:
            left = deadline - clock()
            if left <= 0:
                raise WaitTimeout(f"{what} is not finished after {timeout:g} s; it goes on")
            delay = min(delay, left)
        sleep(delay)
    raise AssertionError("unreachable: delays() never ends")  # pragma: no cover


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds; ``None`` if absent or unusable.

    (The HTTP-date form is not sent by this service, so it counts as absent.)
    """
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds < 0 or seconds != seconds:  # negative or NaN
        return None
    return seconds


def retryable_status(status: int, retry_after_header: str | None) -> float | None:
    """How long to wait before repeating a request that got ``status``; ``None``: do not.

    Only ``503`` with a usable ``Retry-After`` of at most :data:`MAX_RETRY_AFTER`.
    """
    if status != 503:
        return None
    seconds = retry_after(retry_after_header)
    if seconds is None or seconds > MAX_RETRY_AFTER:
        return None
    return seconds


def retryable_error(method: str, error: requests.RequestException) -> bool:
    """Whether a request that failed with ``error`` (no answer at all) may be sent again.

    A connection that could not be opened sent nothing, whatever the method; a
    connection lost later may have delivered the request, so only idempotent
    methods are repeated then.
    """
    if isinstance(error, requests.ConnectTimeout):
        return True
    if isinstance(error, requests.ConnectionError):
        if _never_connected(error):
            return True
        return method.upper() in IDEMPOTENT
    return False


def _never_connected(error: requests.ConnectionError) -> bool:
    """True when urllib3 says the TCP connection itself failed (refused, DNS, unreachable)."""
    reason: object = error.args[0] if error.args else None
    reason = getattr(reason, "reason", reason)  # MaxRetryError wraps the real one
    name = type(reason).__name__
    return name in ("NewConnectionError", "NameResolutionError", "ConnectTimeoutError")
