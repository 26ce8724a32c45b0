"""The tasks that POST registry events to a registered model's webhook, and their sweep.

A shell around :class:`mlservice.registry.events.RegistryEvents`: the history
is the outbox, delivered in order, each entry signed with the name's webhook
secret like a training callback (same HMAC, same SSRF rules:
:mod:`mlservice.training.callbacks`). A failed delivery is retried with
backoff; once given up, that entry is passed over (and logged) so the next
ones are not held back. The sweep (``celery beat``) sends again the names
whose delivery was never started (the broker was away, or the task was lost
with its worker). One task at a time delivers a name's events (a lock in
Redis), so they arrive in order and, unless an answer is lost, once each.
"""

from __future__ import annotations

import time

from celery.utils.log import get_task_logger

from ..celery_app import TaskName, app
from ..registry import events as registry_events
from ..registry.history import WEBHOOK_EVENTS
from ..training import callbacks
from ..training.callbacks import DeliveryFailed
from .base import ServiceTask

log = get_task_logger(__name__)

#: Retries wait up to RETRY_BACKOFF x 2^retries seconds, at most RETRY_BACKOFF_MAX.
RETRY_BACKOFF = 2
RETRY_BACKOFF_MAX = 300
MAX_RETRIES = 6


@app.task(
    bind=True,
    base=ServiceTask,
    name=TaskName.SEND_REGISTRY_EVENTS,
    autoretry_for=(DeliveryFailed,),
    retry_backoff=RETRY_BACKOFF,
    retry_backoff_max=RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=MAX_RETRIES,
)
def send_registry_events(self: ServiceTask, name: str) -> int:
    """POST every pending event of ``name`` to its webhook, oldest first; how many were sent."""
    ctx = self.ctx
    events = ctx.registry.events
    grace = registry_events.EVENT_GRACE_SECONDS
    if not events.due(name, time.time() + callbacks.TIMEOUT_SECONDS + grace):
        return 0  # sent already (or the name is gone)
    holder = str(self.request.id)
    if not events.claim(name, holder):
        return 0  # another task is delivering the name's events: it sends these too
    try:
        return _deliver(self, name, holder)
    except BaseException:
        events.release(name, holder)
        raise


def _deliver(task: ServiceTask, name: str, holder: str) -> int:
    """Send the entries after the cursor until it reaches the newest; how many were sent."""
    events = task.ctx.registry.events
    allow_private = task.ctx.settings.service.callback_allow_private
    sent = 0
    while True:
        outbox = events.outbox(name)
        if outbox is None or not outbox.entries:
            if events.settle(name, holder):
                return sent
            continue  # an event came meanwhile
        for entry in outbox.entries:
            if entry["event"] in WEBHOOK_EVENTS:
                payload = registry_events.payload(name, entry)
                try:
                    callbacks.deliver(
                        outbox.url, payload, outbox.secret, allow_private, field="webhook_url"
                    )
                except DeliveryFailed as failed:
                    if task.request.retries < MAX_RETRIES:
                        wait = min(RETRY_BACKOFF_MAX, RETRY_BACKOFF * 2**task.request.retries)
                        grace = registry_events.EVENT_GRACE_SECONDS
                        events.due(name, time.time() + wait + grace)
                        raise
                    log.warning("registry event %s of %s given up: %s", entry["id"], name, failed)
                else:
                    sent += 1
            events.passed(name, entry["id"])
            events.hold(name)


@app.task(base=ServiceTask, name=TaskName.SWEEP_REGISTRY_EVENTS, ignore_result=True)
def sweep_registry_events() -> list[str]:
    """Send again the names whose webhook delivery did not start in time; those names."""
    ctx = sweep_registry_events.ctx
    now = time.time()
    names = ctx.registry.events.overdue(now, now + registry_events.EVENT_GRACE_SECONDS)
    for name in names:
        log.warning("registry events of %s were not sent in time; sent again", name)
        ctx.enqueue(TaskName.SEND_REGISTRY_EVENTS, (name,))
    return names
