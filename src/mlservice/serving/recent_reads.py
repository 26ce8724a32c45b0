"""What a prediction reads from Redis, remembered by each API worker for a bounded time.

A prediction needs three small facts from Redis: the token's user (role,
token generation and account id), the model's published version and, for a user's model,
its record (owner and status). Read together they cost one pipelined round
trip, which under load was a large part of a one-row prediction's time. This
worker remembers each answer for at most ``[inference] freshness_ms``, so a
retrain, a deleted model or a revoked token is seen by every worker within
that time, and a busy worker reads Redis once per user and model per period
instead of once per request.

Only admissions are decided from remembered reads: the predict route reads
again from Redis before it refuses anything (see :func:`read_again`), so a
new token, a model just trained or just shared is never refused because of a
stale memory.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import redis

from ..store import published, user_records
from ..store.catalog import Catalog
from ..store.records import ModelRecord

#: Remembered answers per worker before they are all dropped (a bound, not a tuning knob).
MAX_ENTRIES = 10_000


class Reads(NamedTuple):
    """The raw answers, parsed by the functions that queued them."""

    access: list[bytes | None] | None  # user_records.parse_access
    version: bytes | None  # published.parse_version
    record: bytes | None  # Catalog.parse; None for the default model


class RecentReads:
    """The reads of one API worker, each reused for at most ``max_age`` seconds."""

    def __init__(self, store: redis.Redis, models: Catalog[ModelRecord], max_age: float) -> None:
        self._store = store
        self._models = models
        self.max_age = max_age
        self._entries: dict[tuple[str, str, bool], tuple[float, Reads]] = {}

    def read(self, username: str, model_id: str, user_model: bool) -> Reads:
        """The remembered answers if they are fresh enough, else read (and remembered) now."""
        remembered = self._entries.get((username, model_id, user_model))
        if remembered is not None and remembered[0] > time.monotonic():
            return remembered[1]
        return self.read_again(username, model_id, user_model)

    def read_again(self, username: str, model_id: str, user_model: bool) -> Reads:
        """Read from Redis in one pipelined round trip, and remember the answers."""
        pipe = self._store.pipeline(transaction=False)
        user_records.queue_access(pipe, username)
        published.queue_version(pipe, model_id)
        if user_model:
            self._models.queue_get(pipe, model_id)
        answers = pipe.execute()
        reads = Reads(answers[0], answers[1], answers[2] if user_model else None)
        if self.max_age > 0:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[(username, model_id, user_model)] = (
                time.monotonic() + self.max_age,
                reads,
            )
        return reads
