"""``/healthz`` (the process answers) and ``/readyz`` (Redis and a Celery worker answer)."""

from __future__ import annotations

import threading

import redis
from flask import Blueprint, Response, jsonify

from ..errors import Unavailable
from .services import services

bp = Blueprint("health", __name__)

# Celery's broadcast replies come back on one consumer per app: two threads
# pinging at once take each other's replies and both see "no worker". One
# ping at a time per process.
_ping_lock = threading.Lock()


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: no dependency is consulted."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: Redis answers as the app user and at least one Celery worker pings back."""
    ctx = services()
    try:
        ctx.redis.ping()
    except redis.RedisError as exc:
        raise Unavailable(f"redis is not reachable: {exc}") from None
    try:
        with _ping_lock:
            replies = ctx.celery.control.ping(timeout=1.0)
    except Exception as exc:  # any broker failure means "not ready", never a 500
        raise Unavailable(f"celery broker is not reachable: {exc}") from None
    if not replies:
        raise Unavailable("no celery worker answered")
    return jsonify(status="ready", workers=len(replies))
