"""What a prediction reads from Redis, remembered by each API worker while it is unchanged.

A prediction needs a few small facts from Redis: the token's user (role and
token generation), the model's published version and, for a user's model, its
record (owner and status); a prediction by registered name, the name's record
and its alias or version instead of the model's record
(:mod:`mlservice.registry.routing`). This worker remembers each one until Redis says its
key changed (:mod:`mlservice.store.key_tracking`), so the common request makes
no Redis round trip and a delete, a revocation or a retrain is seen by every
worker before the request that made it has answered. While the tracking
connection is down nothing is remembered: every request reads Redis.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import redis

from ..store import published, user_records
from ..store.catalog import Catalog
from ..store.key_tracking import KeyTracker
from ..store.records import ModelRecord

#: Remembered answers per worker before they are all dropped (a bound, not a tuning knob).
MAX_ENTRIES = 10_000

_MISSING = object()

#: One key a prediction reads: its name, and how to queue its read on a pipeline.
Wanted = tuple[bytes, Callable[[redis.client.Pipeline], None]]


def access_read(username: str) -> Wanted:
    """The read of the token's user: role and generation (``user_records.parse_access``)."""
    return (
        user_records.user_key(username).encode(),
        lambda pipe: user_records.queue_access(pipe, username),
    )


def version_read(model_id: str) -> Wanted:
    """The read of a model's published version (``published.parse_version``)."""
    return (
        published.version_key(model_id).encode(),
        lambda pipe: published.queue_version(pipe, model_id),
    )


class Reads(NamedTuple):
    """The raw answers, parsed by the functions that queued them."""

    access: list[bytes | None] | None  # user_records.parse_access (an HMGET)
    version: bytes | None  # published.parse_version
    record: bytes | None  # Catalog.parse; None for the default model


class HotReads:
    """The hot path's reads of one API worker, remembered while Redis says they hold."""

    def __init__(
        self, redis_client: redis.Redis, models: Catalog[ModelRecord], tracker: KeyTracker
    ) -> None:
        self._redis = redis_client
        self._models = models
        self.tracker = tracker
        self._values: dict[bytes, object] = {}  # key -> the raw answer read
        self._lock = threading.Lock()
        tracker.listen(self._forget)

    def _forget(self, keys: list[bytes] | None) -> None:
        """Redis says these keys changed (``None``: any key may have)."""
        with self._lock:
            if keys is None:
                self._values.clear()
                return
            for changed in keys:
                self._values.pop(changed, None)

    def read(self, username: str, model_id: str, user_model: bool) -> Reads:
        """The answers, from memory where Redis has said nothing changed, else in one
        pipelined round trip (and remembered, if nothing changed meanwhile)."""
        wanted = [access_read(username), version_read(model_id)]
        if user_model:
            wanted.append(self.record_read(model_id))
        values = self.values(wanted)
        return Reads(values[0], values[1], values[2] if user_model else None)

    def record_read(self, model_id: str) -> Wanted:
        """The read of a user's model's record (``Catalog.parse_shared``)."""
        return (
            self._models.key(model_id).encode(),
            lambda pipe: self._models.queue_get(pipe, model_id),
        )

    def values(self, wanted: Sequence[Wanted]) -> list[Any]:
        """The raw values of ``wanted`` keys, in order: remembered ones from memory, the
        others in one pipelined round trip (then remembered, if nothing changed meanwhile).

        Any tracked key may be asked for (users, models, registry names and aliases):
        a key under none of the tracker's prefixes must not be, since no change to it
        would ever be heard of.
        """
        self.tracker.catch_up()
        values = [self._values.get(key, _MISSING) for key, _ in wanted]
        if _MISSING in values:
            mark = self.tracker.mark()
            pipe = self._redis.pipeline(transaction=False)
            missing = [index for index, value in enumerate(values) if value is _MISSING]
            for index in missing:
                wanted[index][1](pipe)
            for index, answer in zip(missing, pipe.execute(), strict=True):
                values[index] = answer
            self.tracker.if_unchanged(mark, lambda: self._remember(wanted, values, missing))
        return values

    def _remember(
        self,
        wanted: Sequence[Wanted],
        values: list[object],
        indexes: list[int],
    ) -> None:
        with self._lock:
            if len(self._values) >= MAX_ENTRIES:
                self._values.clear()
            for index in indexes:
                self._values[wanted[index][0]] = values[index]
