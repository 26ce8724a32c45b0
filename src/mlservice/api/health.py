"""``/healthz`` (the process answers) and ``/readyz`` (Redis and a Celery worker answer).

Both answer anyone, so they name only which dependency is down: never an
address or an exception's text. Those go to the log, with the request id.
``/readyz`` answers within about three seconds whatever its dependencies do:
Redis is asked on a connection of its own with a short timeout (the app's
own waits ten seconds for a busy Redis), so a Redis that stopped answering
is "not ready" at once rather than a readiness probe that hangs.
"""

from __future__ import annotations

import logging
import threading

import redis
from flask import Blueprint, Response, current_app, jsonify
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..config import RedisSettings
from ..errors import Unavailable
from .services import services

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

#: How long the readiness check waits for Redis: to connect, then for its answer.
REDIS_TIMEOUT_SECONDS = 1.0
#: How long it waits for a Celery worker to answer a ping.
PING_TIMEOUT_SECONDS = 1.0

# Celery's broadcast replies come back on one consumer per app: two threads
# pinging at once take each other's replies and both see "no worker". One
# ping at a time per process.
_ping_lock = threading.Lock()


def readiness_redis(settings: RedisSettings) -> redis.Redis:
    """This app's Redis client for readiness checks: one per app, with short timeouts."""
    client = current_app.extensions.get("mlservice.readiness_redis")
    if client is None:
        client = redis.Redis.from_url(
            settings.app_url,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),  # one try: redis-py's default tries four times
        )
        current_app.extensions["mlservice.readiness_redis"] = client
    return client


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: no dependency is consulted."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: Redis answers as the app user and at least one Celery worker pings back."""
    ctx = services()
    try:
        readiness_redis(ctx.settings.redis).ping()
    except redis.RedisError as exc:
        log.warning("not ready: Redis did not answer the readiness ping: %r", exc)
        raise Unavailable("not ready: the store (Redis) does not answer") from None
    try:
        with _ping_lock:
            replies = ctx.celery.control.ping(timeout=PING_TIMEOUT_SECONDS)
    except Exception as exc:  # any broker failure means "not ready", never a 500
        log.warning("not ready: the Celery broker did not take the ping: %r", exc)
        raise Unavailable("not ready: the task queue (Celery broker) does not answer") from None
    if not replies:
        raise Unavailable("not ready: no Celery worker answered")
    return jsonify(status="ready", workers=len(replies))
