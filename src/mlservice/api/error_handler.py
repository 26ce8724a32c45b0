"""Every error leaves as JSON ``{"status": "<what went wrong>"}``, never as a traceback.

One handler, registered once, for every exception a request can raise:

* :class:`mlservice.errors.ServiceError` (what routes and domain code raise)
  answers with its own status, message and headers;
* werkzeug's HTTP errors (an unknown URL, a method not allowed, a body over
  ``max_content_length``) keep their status and description;
* anything else is logged with its traceback and answers a bare 500.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

from ..errors import ServiceError

log = logging.getLogger(__name__)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The one shape of an error body."""
    response = jsonify(status=message)
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
    log.exception("unhandled error")
    return error_response(500, InternalServerError.description)


def register(app: Flask) -> None:
    """Install the JSON error handler."""
    app.register_error_handler(Exception, handle)
