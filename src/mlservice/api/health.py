"""``/healthz`` (the process answers) and ``/readyz`` (Redis and a Celery worker answer)."""

from __future__ import annotations

import redis
from flask import Blueprint, jsonify

from ..app import services
from ..celery_app import app as celery
from .errors import error_response

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Liveness: no dependency is consulted."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Readiness: Redis answers as the app user and at least one Celery worker pings back."""
    try:
        services().store.ping()
    except redis.RedisError as exc:
        return error_response(503, f"redis is not reachable: {exc}")
    try:
        replies = celery.control.ping(timeout=1.0)
    except Exception as exc:  # any broker failure means "not ready", never a 500
        return error_response(503, f"celery broker is not reachable: {exc}")
    if not replies:
        return error_response(503, "no celery worker answered")
    return jsonify(status="ready", workers=len(replies))
