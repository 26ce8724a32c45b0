"""``/healthz`` (the process answers) and ``/readyz`` (Redis and a Celery worker answer)."""

from __future__ import annotations

import redis
from flask import Blueprint, Response, jsonify

from ..errors import Unavailable
from .services import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: no dependency is consulted."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: Redis answers as the app user and at least one Celery worker pings back."""
    ctx = services()
    try:
        ctx.store.ping()
    except redis.RedisError as exc:
        raise Unavailable(f"redis is not reachable: {exc}") from None
    try:
        replies = ctx.celery.control.ping(timeout=1.0)
    except Exception as exc:  # any broker failure means "not ready", never a 500
        raise Unavailable(f"celery broker is not reachable: {exc}") from None
    if not replies:
        raise Unavailable("no celery worker answered")
    return jsonify(status="ready", workers=len(replies))
