"""A registered model's history: every change, with its time, actor, before and after.

One Redis stream per name (``mlservice:registry:history:<name>``), never
trimmed. Each change appends its entry *in the same MULTI/EXEC transaction*
as the change itself (:func:`queue_event` takes that transaction's
pipeline), so the history can neither miss a change nor tell of one that did
not happen; Redis's append-only file keeps it across restarts. The history
lives as long as the registered model (deleting the name, which needs it to
have no alias, deletes it too).

The stream doubles as the outbox of the name's webhook: :mod:`.events` sends
the entries after a cursor, in order.
"""

from __future__ import annotations

import re
import time
from enum import StrEnum
from typing import Any, cast

import msgspec
import redis

from ..redis_client import text
from .registry_records import HistoryEntry, history_key

#: Stream entries as redis-py gives them back: (id, fields) each.
Entries = list[tuple[bytes, dict[bytes, bytes]]]
#: A stream id as a client may pass it back (``?after=``).
ENTRY_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


class Event(StrEnum):
    """What a history entry records."""

    CREATED = "created"
    VERSION_ADDED = "version_added"
    ALIAS_SET = "alias_set"  # an alias that did not exist
    ALIAS_MOVED = "alias_moved"  # an existing alias pointed elsewhere
    ALIAS_REMOVED = "alias_removed"
    DESCRIPTION_CHANGED = "description_changed"
    TAGS_CHANGED = "tags_changed"
    WEBHOOK_CHANGED = "webhook_changed"  # its URL (never its secret)
    LOG_PREDICTIONS_CHANGED = "log_predictions_changed"  # its prediction log turned on or off


#: The events a registered model's webhook is sent.
WEBHOOK_EVENTS = frozenset(
    {
        Event.VERSION_ADDED,
        Event.ALIAS_SET,
        Event.ALIAS_MOVED,
        Event.ALIAS_REMOVED,
        Event.DESCRIPTION_CHANGED,
        Event.TAGS_CHANGED,
    }
)


def queue_event(
    pipe: redis.client.Pipeline,
    name: str,
    event: Event,
    actor: str,
    *,
    before: Any = None,
    after: Any = None,
    version: int | None = None,
    alias: str | None = None,
) -> None:
    """Append an entry to ``name``'s history, inside the transaction ``pipe`` of the change."""
    fields = {
        "event": event.value,
        "at": repr(time.time()),
        "actor": actor,
        "before": msgspec.json.encode(before),
        "after": msgspec.json.encode(after),
    }
    if version is not None:
        fields["version"] = str(version)
    if alias is not None:
        fields["alias"] = alias
    pipe.xadd(history_key(name), fields)  # type: ignore[arg-type]


def parse(entry_id: bytes | str, fields: dict[bytes, bytes]) -> HistoryEntry:
    """One stream entry as the API shows it."""
    version = fields.get(b"version")
    alias = fields.get(b"alias")
    return {
        "id": str(text(entry_id)),
        "event": fields[b"event"].decode(),
        "at": float(fields[b"at"]),
        "actor": fields[b"actor"].decode(),
        "version": int(version) if version is not None else None,
        "alias": alias.decode() if alias is not None else None,
        "before": msgspec.json.decode(fields[b"before"]),
        "after": msgspec.json.decode(fields[b"after"]),
    }


def read(store: redis.Redis, name: str, after: str | None, limit: int) -> list[HistoryEntry]:
    """At most ``limit`` entries, oldest first, from the one after ``after`` (an entry id)."""
    start = f"({after}" if after else "-"
    entries = cast(Entries, store.xrange(history_key(name), min=start, max="+", count=limit))
    return [parse(entry_id, fields) for entry_id, fields in entries]


def last_id(store: redis.Redis | redis.client.Pipeline, name: str) -> str | None:
    """The id of the newest entry (``None``: no history)."""
    newest = store.xrevrange(history_key(name), max="+", min="-", count=1)
    return str(text(newest[0][0])) if newest else None
