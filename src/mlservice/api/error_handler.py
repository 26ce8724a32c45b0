"""Every error leaves as JSON ``{"status": "<what went wrong>"}``, never as a traceback.

(The Open Inference Protocol's routes, under ``/v2``, say ``{"error": ...}``
instead, as that protocol does: :mod:`.v2`.)

One handler, registered once, for every exception a request can raise:

* :class:`mlservice.errors.ServiceError` (what routes and domain code raise)
  answers with its own status, message and headers;
* werkzeug's HTTP errors (an unknown URL, a method not allowed, a body over
  ``max_content_length``) keep their status and description;
* Redis or the Celery broker out of reach is 503 with ``Retry-After``, on
  every route: the client's request was fine, the service will be back;
* a store with no room left is 507 naming it: the artifact store's file
  system full (ENOSPC, EDQUOT), or Redis refusing writes (out of memory, or
  its own disk full: ``OOM``, ``MISCONF``);
* anything else is logged with its traceback and answers a bare 500.
"""

from __future__ import annotations

import logging

import redis
from flask import Flask, Response, has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

from ..context import RETRY_AFTER_SECONDS
from ..errors import ARTIFACT_STORE_FULL, ServiceError, is_no_room
from ..redis_client import UNREACHABLE

log = logging.getLogger(__name__)

#: What a client reads when Redis refuses writes for want of room.
REDIS_FULL = (
    "the service's store (Redis) is full (out of memory, or no space left on its disk): "
    "nothing was stored; retry once its operator has made room"
)

#: Where the Open Inference Protocol's routes live: their errors are ``{"error": ...}``.
V2_PREFIX = "/v2"


def error_key() -> str:
    """The key of an error body: ``error`` on the V2 routes (and any path under ``/v2``,
    unknown ones included), ``status`` everywhere else."""
    if has_request_context():
        path = request.path
        if path == V2_PREFIX or path.startswith(V2_PREFIX + "/"):
            return "error"
    return "status"


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The one shape of an error body (its key: :func:`error_key`)."""
    response = jsonify({error_key(): message})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def handle(exc: Exception) -> Response:
    """The JSON answer for any exception a view raised."""
    if isinstance(exc, ServiceError):
        return error_response(exc.status, exc.message, exc.headers)
    if isinstance(exc, HTTPException):
        headers = {
            name: value for name, value in exc.get_headers() if name.lower() != "content-type"
        }
        return error_response(exc.code or 500, exc.description or exc.name, headers)
    if isinstance(exc, UNREACHABLE):
        log.warning("Redis is not reachable: %s", exc)
        return error_response(
            503,
            "the service's store (Redis) is not reachable; retry shortly",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if is_no_room(exc):
        log.error("the artifact store is full: %s", exc)
        return error_response(507, ARTIFACT_STORE_FULL)
    if _redis_full(exc):
        log.error("Redis refuses writes: %s", exc)
        return error_response(507, REDIS_FULL)
    log.exception("unhandled error")
    return error_response(500, InternalServerError.description)


def _redis_full(exc: Exception) -> bool:
    """Redis refused a write for want of room: over maxmemory, or its AOF/RDB disk full."""
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return True
    return isinstance(exc, redis.exceptions.ResponseError) and str(exc).startswith("MISCONF")


def register(app: Flask) -> None:
    """Install the JSON error handler."""
    app.register_error_handler(Exception, handle)
