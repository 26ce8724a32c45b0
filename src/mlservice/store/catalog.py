"""Metadata records (data sets, models) in Redis, with their owners.

A record is a JSON object stored at ``mlservice:<kind>:<id>``, indexed by
creation time in ``mlservice:<kind>s`` (everything, for admins) and
``mlservice:<kind>s:by:<owner>`` (one user's). Ownership is checked here, once,
for every kind: a record another user owns is reported as not found. Every
record read is checked against its declared type (:mod:`.records`) by
msgspec, so a reader gets what the type says or a clear error, never a
``KeyError`` deep in a route.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Generic, TypeVar, cast

import msgspec
import redis

from ..errors import NotFound
from ..redis_client import key, text
from ..security import Identity

#: The record type of a catalog (DatasetRecord or ModelRecord).
R = TypeVar("R")


class Catalog(Generic[R]):
    """The records of one kind (``dataset`` or ``model``), each a ``record_type``."""

    def __init__(self, redis_client: redis.Redis, kind: str, record_type: type[R]) -> None:
        self.store = redis_client
        self.kind = kind
        self.record_type = record_type
        self._decoder = msgspec.json.Decoder(record_type)

    def key(self, item_id: str) -> str:
        """The key of one record."""
        return key(self.kind, item_id)

    def _index(self, owner: str | None = None) -> str:
        return key(f"{self.kind}s", "by", owner) if owner else key(f"{self.kind}s")

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def create(self, record: R) -> R:
        """Store a new record (it must carry ``id`` and ``owner``) and index it."""
        fields = cast(dict[str, Any], record)
        fields.setdefault("created_at", time.time())
        pipe = self.store.pipeline(transaction=True)
        pipe.set(self.key(fields["id"]), json.dumps(fields))
        pipe.zadd(self._index(), {fields["id"]: fields["created_at"]})
        pipe.zadd(self._index(fields["owner"]), {fields["id"]: fields["created_at"]})
        pipe.execute()
        return record

    def update(self, item_id: str, **changes: Any) -> R:
        """Merge ``changes`` into a record, atomically (WATCH/MULTI, retried on a race).

        :class:`NotFound` if the record is gone (deleted meanwhile).
        """
        record_key = self.key(item_id)
        with self.store.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(record_key)
                    raw = pipe.get(record_key)
                    if raw is None:
                        raise NotFound(f"no {self.kind} {item_id!r}")
                    record = json.loads(raw) | changes
                    pipe.multi()
                    pipe.set(record_key, json.dumps(record))
                    pipe.execute()
                    return cast(R, record)
                except redis.WatchError:
                    continue

    def get(self, item_id: str, viewer: Identity | None = None) -> R:
        """A record; :class:`NotFound` if missing or owned by someone else than ``viewer``."""
        return self.parse(self.store.get(self.key(item_id)), item_id, viewer)

    def queue_get(self, pipe: redis.client.Pipeline, item_id: str) -> None:
        """Add a record read to a pipeline; :meth:`parse` checks its answer like :meth:`get`."""
        pipe.get(self.key(item_id))

    def parse(self, raw: bytes | str | None, item_id: str, viewer: Identity | None = None) -> R:
        """The record read from ``raw``, with :meth:`get`'s existence and owner checks."""
        if raw is None:
            raise NotFound(f"no {self.kind} {item_id!r}")
        record = self._decoder.decode(raw)
        owner = cast(dict[str, Any], record)["owner"]
        if viewer is not None and not viewer.is_admin and owner != viewer.username:
            raise NotFound(f"no {self.kind} {item_id!r}")
        return record

    def list(self, viewer: Identity, page: int = 1, per_page: int = 50) -> tuple[list[R], int]:
        """One page of the viewer's records (all of them for admins), newest first."""
        index = self._index() if viewer.is_admin else self._index(viewer.username)
        total = self.store.zcard(index)
        start = (page - 1) * per_page
        ids = [str(text(i)) for i in self.store.zrevrange(index, start, start + per_page - 1)]
        raws = self.store.mget([self.key(i) for i in ids]) if ids else []
        return [self._decoder.decode(raw) for raw in raws if raw is not None], total

    def owned_ids(self, owner: str) -> tuple[str, ...]:
        """The ids of every record ``owner`` owns (to delete a user's data with the user)."""
        return tuple(str(text(i)) for i in self.store.zrange(self._index(owner), 0, -1))

    def delete(self, item_id: str, unless_held_by: str | None = None) -> R:
        """Remove a record and its index entries; return what it was.

        ``unless_held_by``: the key of a set that must be empty for the record to go
        (a model's registry pins): checked and deleted in one transaction, so nothing
        can be added to the set in between; :class:`Held` with its members if not.
        """
        record_key = self.key(item_id)
        watched = [record_key] if unless_held_by is None else [record_key, unless_held_by]
        with self.store.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(*watched)
                    record = self.parse(pipe.get(record_key), item_id)
                    if unless_held_by is not None:
                        holders = sorted(str(text(m)) for m in pipe.smembers(unless_held_by))
                        if holders:
                            raise Held(holders)
                    pipe.multi()
                    pipe.delete(record_key)
                    pipe.zrem(self._index(), item_id)
                    pipe.zrem(self._index(cast(dict[str, Any], record)["owner"]), item_id)
                    pipe.execute()
                    return record
                except redis.WatchError:
                    continue


class Held(Exception):
    """A record that may not be deleted while something holds it; ``holders`` say what."""

    def __init__(self, holders: list[str]) -> None:
        super().__init__(", ".join(holders))
        self.holders = holders
