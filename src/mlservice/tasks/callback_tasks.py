"""The task that POSTs a training callback, retried with backoff.

Never signed with the service secret: a receiver must not learn what signs
tokens. The callback stays pending until delivered or given up; one lost with
its worker is sent again by the sweep
(:meth:`mlservice.training.jobs.Trainer.resend_lost_callbacks`), and an
attempt at one already delivered does nothing.
"""

from __future__ import annotations

import time
from typing import Any

from celery.utils.log import get_task_logger

from ..celery_app import TaskName, app
from ..training import callbacks
from ..training.callbacks import DeliveryFailed
from ..training.jobs import CALLBACK_GRACE_SECONDS
from .base import ServiceTask

log = get_task_logger(__name__)

#: Retries wait up to RETRY_BACKOFF x 2^retries seconds, at most RETRY_BACKOFF_MAX.
RETRY_BACKOFF = 2
RETRY_BACKOFF_MAX = 300


@app.task(
    bind=True,
    base=ServiceTask,
    name=TaskName.SEND_CALLBACK,
    autoretry_for=(DeliveryFailed,),
    retry_backoff=RETRY_BACKOFF,
    retry_backoff_max=RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=6,
)
def send_callback(
    self: ServiceTask, model_id: str, url: str, payload: dict[str, Any]
) -> int | None:
    """POST the result, signed with the client's callback secret; the receiver's status."""
    ctx = self.ctx
    runs, status = ctx.models.runs, str(payload.get("status"))
    attempt = time.time() + callbacks.TIMEOUT_SECONDS + CALLBACK_GRACE_SECONDS
    if not runs.callback_due(model_id, status, attempt):
        log.info("the %s callback of model %s was delivered already", status, model_id)
        return None
    secret = runs.callback_secret(model_id)
    if secret is None:
        log.info("model %s was deleted: no callback", model_id)
        runs.callback_settled(model_id, status)
        return None
    log.info("callback for model %s to %s (try %d)", model_id, url, self.request.retries + 1)
    try:
        answer = callbacks.deliver(
            url, payload, secret, ctx.settings.service.callback_allow_private
        )
    except DeliveryFailed:
        if self.request.retries < (self.max_retries or 0):
            # autoretry waits at most this long (exponential backoff, capped, jittered below)
            wait = min(RETRY_BACKOFF_MAX, RETRY_BACKOFF * 2**self.request.retries)
            runs.callback_due(model_id, status, time.time() + wait + CALLBACK_GRACE_SECONDS)
        else:
            runs.callback_settled(model_id, status)  # given up
        raise
    except Exception:  # not a delivery failure: never retried, so not sent again either
        runs.callback_settled(model_id, status)
        raise
    runs.callback_settled(model_id, status)
    return answer
