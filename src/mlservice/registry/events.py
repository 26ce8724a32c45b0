"""Registry events for webhooks: the history is the outbox, sent in order.

A registered model with a webhook URL keeps a *cursor*: the id of the last
history entry its webhook was sent (or passed over: not every entry is an
event a webhook hears of, see ``history.WEBHOOK_EVENTS``). A change the
webhook should hear of marks the name *pending* in the same transaction
(:func:`queue_pending`: the sorted set ``registry:events:pending``, name ->
the time a delivery must have started by). After the change the API (or the
training task) sends the Celery task that delivers
(:mod:`mlservice.tasks.registry_tasks`); if that cannot be sent (the broker
away), or the task is lost with its worker, the sweep (``celery beat``) finds
the name overdue and sends it again.

One task at a time delivers a name's events (it holds the name's delivery
lock; another finds it held and leaves the work to it). It POSTs each entry
after the cursor, oldest first, and moves the cursor past it once the
receiver answered 2xx (or the delivery was given up); it ends when the cursor
has reached the newest entry (:meth:`RegistryEvents.settle`, which lets go of
the lock in the same step, atomic with new entries being added: an entry
added before is sent by this task, one added after by the next). A receiver
may get an event twice (a retry after a lost answer): its delivery id,
``registry:<name>:<entry id>``, is the same every time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import redis

from ..redis_client import key, text
from . import history
from .registry_records import (
    BASE,
    EVENTS_PENDING_KEY,
    RECORD,
    HistoryEntry,
    history_key,
    record_key,
    webhook_cursor_key,
    webhook_secret_key,
)

#: A pending delivery whose attempt has not started this long after it was due was lost.
EVENT_GRACE_SECONDS = 30.0
#: History entries read at a time by a delivering task.
BATCH = 50
#: A delivery lock not refreshed for this long was held by a task that died.
LOCK_SECONDS = 120

# The cursor moves forward only (two deliveries of one name may overlap).
_PASSED = """
local function parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local cms, cseq = parts(current)
local ms, seq = parts(ARGV[1])
if ms > cms or (ms == cms and seq > cseq) then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
"""
# Not pending any more, if the cursor reached the newest entry (or there is no webhook);
# then the delivery lock (KEYS[4]) goes too, if it is still this task's (ARGV[2]).
_SETTLE = """
local cursor = redis.call('GET', KEYS[1])
if cursor then
  local newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  if #newest > 0 and newest[1][1] ~= cursor then return 0 end
end
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('GET', KEYS[4]) == ARGV[2] then redis.call('DEL', KEYS[4]) end
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# 1: a delivery is owed (its deadline moved to ARGV[1]); 0: nothing is pending.
_DUE = """
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
"""
_OVERDUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], member) end
return due
"""


def _lock_key(name: str) -> str:
    """Held by the one task delivering ``name``'s events."""
    return key(BASE, "events", "lock", name)


def queue_pending(pipe: redis.client.Pipeline, name: str, deadline: float) -> None:
    """In a change's transaction: ``name``'s webhook has events to be sent by ``deadline``
    (an earlier deadline already set stays)."""
    pipe.zadd(EVENTS_PENDING_KEY, {name: deadline}, nx=True)


def payload(name: str, entry: HistoryEntry) -> dict[str, Any]:
    """What the webhook is POSTed for one history entry (signed by the sender)."""
    return {
        "delivery_id": f"registry:{name}:{entry['id']}",
        "name": name,
        "history_id": entry["id"],
        "event": entry["event"],
        "at": entry["at"],
        "actor": entry["actor"],
        "version": entry["version"],
        "alias": entry["alias"],
        "before": entry["before"],
        "after": entry["after"],
    }


@dataclass(frozen=True)
class Outbox:
    """Where a name's events go, and the next entries after its cursor."""

    url: str
    secret: str
    entries: list[HistoryEntry]


class RegistryEvents:
    """The webhook deliveries owed, per name (see the module's docstring)."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self.redis = redis_client
        self._passed = redis_client.register_script(_PASSED)
        self._settle = redis_client.register_script(_SETTLE)
        self._release = redis_client.register_script(_RELEASE)
        self._due = redis_client.register_script(_DUE)
        self._overdue = redis_client.register_script(_OVERDUE)

    def due(self, name: str, deadline: float) -> bool:
        """A delivery starts: False if nothing is pending for ``name``. Otherwise its next
        attempt, if any, must have started by ``deadline``."""
        return bool(self._due(keys=[EVENTS_PENDING_KEY], args=[deadline, name]))

    def outbox(self, name: str) -> Outbox | None:
        """The webhook and the entries after its cursor (``None``: the name, or its webhook,
        is gone: nothing to send)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(record_key(name))
        pipe.get(webhook_secret_key(name))
        pipe.get(webhook_cursor_key(name))
        raw, secret, cursor = pipe.execute()
        if raw is None or secret is None or cursor is None:
            return None
        url = RECORD.decode(raw)["webhook_url"]
        if not url:
            return None
        entries = cast(
            history.Entries,
            self.redis.xrange(history_key(name), min=f"({text(cursor)}", count=BATCH),
        )
        return Outbox(
            url, str(text(secret)), [history.parse(entry, fields) for entry, fields in entries]
        )

    def claim(self, name: str, holder: str) -> bool:
        """Take the name's delivery lock for ``holder`` (a task id), or False if another
        delivering task holds it (that one sends everything pending)."""
        return bool(self.redis.set(_lock_key(name), holder, nx=True, ex=LOCK_SECONDS))

    def hold(self, name: str) -> None:
        """Still delivering: the lock lasts another :data:`LOCK_SECONDS`."""
        self.redis.expire(_lock_key(name), LOCK_SECONDS)

    def release(self, name: str, holder: str) -> None:
        """Let go of the lock (a delivery failed and will be retried, or a crash)."""
        self._release(keys=[_lock_key(name)], args=[holder])

    def passed(self, name: str, entry_id: str) -> None:
        """The entry was delivered (or given up, or is no webhook event): the cursor moves past."""
        self._passed(keys=[webhook_cursor_key(name)], args=[entry_id])

    def settle(self, name: str, holder: str) -> bool:
        """Nothing is pending any more, if the cursor reached the newest entry, and the lock
        is let go; False if new entries came meanwhile (send those too)."""
        keys = [webhook_cursor_key(name), history_key(name), EVENTS_PENDING_KEY, _lock_key(name)]
        return bool(self._settle(keys=keys, args=[name, holder]))

    def overdue(self, now: float, next_deadline: float) -> list[str]:
        """Names whose delivery did not start in time (lost): claimed, their deadline moved
        to ``next_deadline`` so that one sweep sends each again."""
        names = self._overdue(keys=[EVENTS_PENDING_KEY], args=[now, next_deadline])
        return [str(text(name)) for name in names]
