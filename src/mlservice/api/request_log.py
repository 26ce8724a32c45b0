"""One log line per request, and the log context of everything logged while it runs.

NGINX sends every request with its ``X-Request-ID`` (its own id, or the
client's when that is sane: see the server template). Before the view runs,
the id, the route (the URL rule, e.g. ``/resource/models/<model_id>``) and the
model id of the URL go into the log context (:func:`mlservice.logs.bind`): every
line logged meanwhile carries them, and so does every Celery task the request
sends. After the view, one line on the ``mlservice.access`` logger says how it
went: method, path, status, duration and user. Gunicorn's own access log is
off (``src/gunicorn.conf.py``): it knows neither the route nor the user.

A request that reaches Gunicorn directly, without an id, gets a new one.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, Response, g, request

from .. import logs

log = logging.getLogger("mlservice.access")


def register(app: Flask) -> None:
    """Install the hooks on ``app``."""
    app.before_request(begin)
    app.after_request(log_request)
    app.teardown_request(end)


def begin() -> None:
    """The request's log context, and the time it started."""
    g.log_started = time.perf_counter()
    view_args = request.view_args or {}
    g.log_context = logs.bind(
        request_id=logs.sane_request_id(request.headers.get(logs.REQUEST_ID_HEADER))
        or logs.new_request_id(),
        route=request.url_rule.rule if request.url_rule is not None else None,
        model_id=view_args.get("model_id"),
    )


def log_request(response: Response) -> Response:
    """The request's one access line: what was asked, the answer, how long, for whom."""
    identity = g.get("identity")
    fields: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
    }
    started = g.get("log_started")
    if started is not None:
        fields["duration_s"] = round(time.perf_counter() - started, 6)
    if identity is not None:
        fields["user"] = identity.username
    log.info("%s %s %s", request.method, request.path, response.status_code, extra=fields)
    return response


def end(_: BaseException | None = None) -> None:
    """Back to the thread's context from before the request (Gunicorn reuses threads)."""
    token = g.pop("log_context", None)
    if token is not None:
        logs.reset(token)
