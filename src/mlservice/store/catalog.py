"""Metadata records (data sets, models) in Redis, with their owners.

A record is a JSON object stored at ``mlservice:<kind>:<id>``, indexed by
creation time in ``mlservice:<kind>s`` (everything, for admins) and
``mlservice:<kind>s:account:<owner_id>`` (one account's). A record names its
owner twice: ``owner_id``, the account id (:mod:`mlservice.accounts`), which
every access check uses, and ``owner``, the user name, for people to read.
So a user name deleted and created again, a new account, reaches nothing of
the old one's. Ownership is checked here, once, for every kind: a record
another account owns is reported as not found. Every record read is checked
against its declared type (:mod:`.records`) by msgspec, so a reader gets
what the type says or a clear error, never a ``KeyError`` deep in a route.

Records stored before account ids were owned by name and indexed in
``mlservice:<kind>s:by:<owner>``; :meth:`Catalog.adopt_legacy_owners` moves
them over, once, at start.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar, cast

import msgspec
import redis

from ..errors import NotFound
from ..redis_client import key, text
from ..security import Identity

#: The record type of a catalog (DatasetRecord or ModelRecord).
R = TypeVar("R")
#: Records read at a time when they are all walked through.
_BATCH = 500


#: Records :meth:`Catalog.parse_shared` keeps decoded (all dropped at once past it).
MAX_SHARED = 1024


class Catalog(Generic[R]):
    """The records of one kind (``dataset`` or ``model``), each a ``record_type``."""

    #: The kinds of record there are.
    DATASETS = "dataset"
    MODELS = "model"

    def __init__(self, redis_client: redis.Redis, kind: str, record_type: type[R]) -> None:
        self.store = redis_client
        self.kind = kind
        self.record_type = record_type
        self._decoder = msgspec.json.Decoder(record_type)
        #: Records decoded by :meth:`parse_shared`, by id, with the stored value they came from.
        self._shared: dict[str, tuple[bytes | str, R]] = {}

    def key(self, item_id: str) -> str:
        """The key of one record."""
        return key(self.kind, item_id)

    def _index(self, owner_id: str | None = None) -> str:
        """Every record of the kind, or those of one account."""
        return key(f"{self.kind}s", "account", owner_id) if owner_id else key(f"{self.kind}s")

    def _legacy_index(self, owner: str) -> str:
        """Where the records of one user name were indexed before account ids."""
        return key(f"{self.kind}s", "by", owner)

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def create(self, record: R) -> R:
        """Store a new record (it must carry ``id``, ``owner`` and ``owner_id``) and index it."""
        fields = cast(dict[str, Any], record)
        if not fields.get("owner_id"):
            raise ValueError(f"a {self.kind} record needs its owner's account id (owner_id)")
        fields.setdefault("created_at", time.time())
        pipe = self.store.pipeline(transaction=True)
        pipe.set(self.key(fields["id"]), json.dumps(fields))
        pipe.zadd(self._index(), {fields["id"]: fields["created_at"]})
        pipe.zadd(self._index(fields["owner_id"]), {fields["id"]: fields["created_at"]})
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
        """A record; :class:`NotFound` if missing or owned by another account than ``viewer``'s
        (admins see every record)."""
        return self.parse(self.store.get(self.key(item_id)), item_id, viewer)

    def queue_get(self, pipe: redis.client.Pipeline, item_id: str) -> None:
        """Add a record read to a pipeline; :meth:`parse` checks its answer like :meth:`get`."""
        pipe.get(self.key(item_id))

    def parse(self, raw: bytes | str | None, item_id: str, viewer: Identity | None = None) -> R:
        """The record read from ``raw``, with :meth:`get`'s existence and owner checks."""
        if raw is None:
            raise NotFound(f"no {self.kind} {item_id!r}")
        record = self._decoder.decode(raw)
        owner_id = cast(dict[str, Any], record)["owner_id"]
        if viewer is not None and not viewer.is_admin and owner_id != viewer.account_id:
            raise NotFound(f"no {self.kind} {item_id!r}")
        return record

    def parse_shared(
        self, raw: bytes | str | None, item_id: str, viewer: Identity | None = None
    ) -> R:
        """:meth:`parse`, decoding each stored value once; the record is shared: read it,
        never change it.

        The hot path reads the same stored value (the one the worker remembers,
        :mod:`mlservice.serving.hot_reads`) on every request, and decoding and
        checking a model's record took about 60 us, a tenth of a prediction.
        A changed record is a new value, so it is decoded again.
        """
        if raw is None:
            raise NotFound(f"no {self.kind} {item_id!r}")
        shared = self._shared.get(item_id)
        if shared is not None and shared[0] is raw:
            record = shared[1]
        else:
            record = self._decoder.decode(raw)
            if len(self._shared) >= MAX_SHARED:
                self._shared.clear()
            self._shared[item_id] = (raw, record)
        owner_id = cast(dict[str, Any], record)["owner_id"]
        if viewer is not None and not viewer.is_admin and owner_id != viewer.account_id:
            raise NotFound(f"no {self.kind} {item_id!r}")
        return record

    def list(self, viewer: Identity, page: int = 1, per_page: int = 50) -> tuple[list[R], int]:
        """One page of the viewer's records (all of them for admins), newest first."""
        if not viewer.is_admin and viewer.account_id is None:
            return [], 0
        index = self._index() if viewer.is_admin else self._index(viewer.account_id)
        total = self.store.zcard(index)
        start = (page - 1) * per_page
        ids = [str(text(i)) for i in self.store.zrevrange(index, start, start + per_page - 1)]
        raws = self.store.mget([self.key(i) for i in ids]) if ids else []
        return [self._decoder.decode(raw) for raw in raws if raw is not None], total

    def owned_ids(self, owner_id: str) -> tuple[str, ...]:
        """The ids of every record the account ``owner_id`` owns (to delete them with it)."""
        return tuple(str(text(i)) for i in self.store.zrange(self._index(owner_id), 0, -1))

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
                    pipe.zrem(self._index(cast(dict[str, Any], record)["owner_id"]), item_id)
                    pipe.execute()
                    return record
                except redis.WatchError:
                    continue

    def adopt_legacy_owners(self, account_of: Callable[[str], str]) -> int:
        """Give each record stored before account ids (an ``owner`` name, no ``owner_id``) the
        account id ``account_of(owner)`` and index it by that; how many were given one.

        Read as raw JSON, not as the record type, which requires ``owner_id``.
        Doing it again changes nothing; a record changed meanwhile is read again.
        """
        adopted = 0
        legacy_indexes: set[str] = set()
        for ids in self._all_ids():
            for item_id, raw in zip(ids, self.store.mget([self.key(i) for i in ids]), strict=True):
                record: dict[str, Any] = json.loads(raw) if raw else {"owner_id": None}
                if "owner_id" in record:
                    continue
                legacy_indexes.add(self._legacy_index(record["owner"]))
                adopted += self._adopt(item_id, account_of(record["owner"]))
        if legacy_indexes:
            self.store.delete(*legacy_indexes)
        return adopted

    def _all_ids(self) -> Iterator[Sequence[str]]:
        """The ids of every record of the kind, a batch at a time."""
        batch = []
        for item_id, _ in self.store.zscan_iter(self._index(), count=_BATCH):
            batch.append(str(text(item_id)))
            if len(batch) == _BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def _adopt(self, item_id: str, owner_id: str) -> int:
        """Give one legacy record ``owner_id`` and move it to that account's index; 1 if done."""
        record_key = self.key(item_id)
        with self.store.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(record_key)
                    raw = pipe.get(record_key)
                    record = json.loads(raw) if raw is not None else None
                    if record is None or "owner_id" in record:
                        return 0
                    record["owner_id"] = owner_id
                    created = record.get("created_at", time.time())
                    pipe.multi()
                    pipe.set(record_key, json.dumps(record))
                    pipe.zadd(self._index(owner_id), {item_id: created})
                    pipe.zrem(self._legacy_index(record["owner"]), item_id)
                    pipe.execute()
                    return 1
                except redis.WatchError:
                    continue


class Held(Exception):
    """A record that may not be deleted while something holds it; ``holders`` say what."""

    def __init__(self, holders: list[str]) -> None:
        super().__init__(", ".join(holders))
        self.holders = holders
