"""Which keys Redis says have changed: server-assisted invalidation, read without a round trip.

A prediction needs a few small facts from Redis (the token's user, the
model's version and record, later a registry alias). Reading them on every
request costs a round trip; remembering them for a while serves stale
answers after a delete, a revocation, a retrain or an alias move. So each API
worker keeps one *tracking* connection: Redis's ``CLIENT TRACKING ... BCAST``
(Redis 6+) sends on it the name of every key under the given prefixes that
anyone changes, the moment it changes (``__redis__:invalidate`` messages;
``FLUSHALL`` sends ``null``: everything).

The messages are read *before each use* of a remembered value (:meth:`KeyTracker.catch_up`),
without waiting: a non-blocking look at the socket. Redis writes the message
to this connection in the same event-loop turn as it answers the write that
caused it, so by the time the writer's HTTP answer has reached its client and
a new request has reached this worker, the message is already in this
worker's socket buffer: the new request drops the old value first. That is
read-your-writes across workers, with no round trip in the common case.

If the tracking connection is down (Redis restarted, the connection killed),
:attr:`KeyTracker.live` is false and nothing may be remembered: callers read
Redis on every request until it is back (tried again at most once a second),
and everything remembered before it went down is dropped when it returns
(:attr:`KeyTracker.epoch` changes), since messages may have been missed.
Never stale, only slower.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

import redis
from redis.connection import Connection

log = logging.getLogger(__name__)

#: The channel Redis sends invalidation messages on (RESP2 redirect mode).
CHANNEL = b"__redis__:invalidate"
#: The tracking connection's name in ``CLIENT LIST`` (operators and tests find it by it).
CLIENT_NAME = "mlservice-tracking"
#: How long to wait before trying a dropped tracking connection again.
RETRY_SECONDS = 1.0

#: What the tracking connection takes from the app's connections (no RESP3 extras).
_CONNECTION_SETTINGS = (
    "host",
    "port",
    "db",
    "username",
    "password",
    "socket_timeout",
    "socket_connect_timeout",
    "socket_keepalive",
)

#: Called with the keys that changed, or ``None`` for "everything" (a flush, a reconnect).
Listener = Callable[[list[bytes] | None], None]


class KeyTracker:
    """One worker's tracking connection, and the listeners told of every changed key."""

    def __init__(self, redis_client: redis.Redis, prefixes: Iterable[str]) -> None:
        given = redis_client.connection_pool.connection_kwargs
        self._connection_kwargs = {  # where and as whom the app's own connections log in
            name: given[name] for name in _CONNECTION_SETTINGS if name in given
        }
        self.prefixes = tuple(prefixes)
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._next_try = 0.0
        #: Changes when the connection comes (back) up: what was remembered before is void.
        self.epoch = 0
        #: How many invalidation messages were applied (a read that saw it move may be stale).
        self.changes = 0

    @property
    def live(self) -> bool:
        """Whether invalidations are being received now (remembering is safe)."""
        return self._connection is not None

    def mark(self) -> tuple[int, int]:
        """Where the tracker is now: compare it with :meth:`if_unchanged` after a read."""
        return self.epoch, self.changes

    def if_unchanged(self, mark: tuple[int, int], action: Callable[[], None]) -> None:
        """Run ``action`` (remember what was read) only if nothing changed since ``mark``
        and the connection is live: a value read while an invalidation was on its way
        might be the old one."""
        with self._lock:
            if self._connection is not None and (self.epoch, self.changes) == mark:
                action()

    def listen(self, listener: Listener) -> None:
        """Call ``listener`` with every change caught up with from now on."""
        self._listeners.append(listener)

    def catch_up(self) -> None:
        """Apply every invalidation already received, without waiting for more.

        (Re)connects when down, at most once per :data:`RETRY_SECONDS`. Thread-safe:
        the threads of a worker take turns.
        """
        with self._lock:
            if self._connection is None:
                if time.monotonic() >= self._next_try:
                    self._connect()
                return
            try:
                while self._connection.can_read(timeout=0):
                    self._apply(self._connection.read_response())
            except (redis.RedisError, OSError) as exc:
                log.warning(
                    "the key tracking connection dropped (%s); reading Redis each time", exc
                )
                self._drop()

    def _apply(self, message: object) -> None:
        """One message from the connection: an invalidation, or a subscription reply."""
        if not isinstance(message, list) or len(message) != 3 or message[0] != b"message":
            return
        if message[1] != CHANNEL:
            return
        keys = message[2]
        self.changes += 1
        for listener in self._listeners:
            listener(list(keys) if isinstance(keys, list) else None)

    def _connect(self) -> None:
        """Open the tracking connection: broadcast mode for the prefixes, sent to itself."""
        connection: Connection | None = None
        try:
            connection = Connection(
                **self._connection_kwargs | {"protocol": 2, "client_name": CLIENT_NAME}
            )
            connection.connect()
            connection.send_command("CLIENT", "ID")
            client_id = connection.read_response()
            prefixes = [part for prefix in self.prefixes for part in ("PREFIX", prefix)]
            connection.send_command(
                "CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST", *prefixes
            )
            connection.read_response()
            connection.send_command("SUBSCRIBE", CHANNEL)
            connection.read_response()
        except (redis.RedisError, OSError) as exc:
            if connection is not None:
                connection.disconnect()
            self._next_try = time.monotonic() + RETRY_SECONDS
            log.debug("key tracking connection not made: %s", exc)
            return
        self._connection = connection
        self.epoch += 1
        for listener in self._listeners:
            listener(None)  # what was read while nothing was tracked may be stale

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.disconnect()
        self._connection = None
        self._next_try = time.monotonic() + RETRY_SECONDS
        for listener in self._listeners:
            listener(None)

    def close(self) -> None:
        """Close the tracking connection (a worker shutting down)."""
        with self._lock:
            self._drop()
