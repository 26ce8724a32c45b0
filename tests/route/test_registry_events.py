"""Registry webhook events over a real redis-server: pending with the change, sent in order,
settled only once nothing newer came, and found again by the sweep when a delivery was lost."""

from __future__ import annotations

import time

from mlservice.registry.changes import NewRegisteredModel, RegisteredModelChange
from mlservice.registry.registry_records import EVENTS_PENDING_KEY
from mlservice.security import Identity

ANN = Identity("rg-events-ann", "user")


def test_events_are_pending_with_their_change_and_settle_in_order(ctx, monkeypatch):
    registry, events = ctx.registry, ctx.registry.events
    sent: list[str] = []
    monkeypatch.setattr(registry, "announce", sent.append)  # the wiring sends the task
    body = NewRegisteredModel(
        name="rg-hooked", webhook_url="https://hooks.example.com/x", webhook_secret="s" * 16
    )
    registry.create(ANN, body)
    assert ctx.redis.zscore(EVENTS_PENDING_KEY, "rg-hooked") is None  # "created" is no event
    registry.update("rg-hooked", ANN, RegisteredModelChange(description="one"))
    registry.update("rg-hooked", ANN, RegisteredModelChange(tags={"a": "b"}))
    assert sent == ["rg-hooked", "rg-hooked"]
    assert events.due("rg-hooked", time.time() + 60)
    assert events.claim("rg-hooked", "task-1")
    assert not events.claim("rg-hooked", "task-2")  # one delivering task per name
    outbox = events.outbox("rg-hooked")
    assert outbox is not None and (outbox.url, outbox.secret) == (body.webhook_url, "s" * 16)
    assert [e["event"] for e in outbox.entries] == [
        "created",
        "description_changed",
        "tags_changed",
    ]
    for entry in outbox.entries[:2]:
        events.passed("rg-hooked", entry["id"])
    assert not events.settle("rg-hooked", "task-1")  # tags_changed is not sent yet
    events.passed("rg-hooked", outbox.entries[2]["id"])
    events.passed("rg-hooked", outbox.entries[0]["id"])  # the cursor never moves back
    registry.update("rg-hooked", ANN, RegisteredModelChange(description="two"))  # meanwhile
    assert not events.settle("rg-hooked", "task-1")
    newer = events.outbox("rg-hooked")
    assert newer is not None and [e["event"] for e in newer.entries] == ["description_changed"]
    events.passed("rg-hooked", newer.entries[0]["id"])
    assert events.settle("rg-hooked", "task-1")
    assert ctx.redis.zscore(EVENTS_PENDING_KEY, "rg-hooked") is None
    assert events.claim("rg-hooked", "task-3")  # settling let go of the lock
    events.release("rg-hooked", "task-3")
    assert not events.due("rg-hooked", time.time() + 60)  # nothing pending: a late task stops


def test_a_lost_delivery_is_found_overdue_once(ctx, monkeypatch):
    registry, events = ctx.registry, ctx.registry.events
    monkeypatch.setattr(registry, "announce", lambda name: None)  # never sent: broker away
    body = NewRegisteredModel(
        name="rg-lost", webhook_url="https://hooks.example.com/x", webhook_secret="s" * 16
    )
    registry.create(ANN, body)
    registry.update("rg-lost", ANN, RegisteredModelChange(description="lost"))
    later = time.time() + 3600  # past the grace period
    assert "rg-lost" in events.overdue(later, later + 30)
    assert "rg-lost" not in events.overdue(later, later + 30)  # claimed by the first sweep
    registry.update("rg-lost", ANN, RegisteredModelChange(webhook_url=None))
    assert events.outbox("rg-lost") is None  # no webhook any more: nothing to send
    assert events.settle("rg-lost", "task")
