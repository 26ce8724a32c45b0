"""The Flask application factory (Gunicorn runs ``mlservice.app:create_app()``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import console
from .api import (
    auth,
    batch_scoring,
    datasets,
    docs,
    error_handler,
    estimators,
    health,
    init,
    model_monitoring,
    model_reports,
    models,
    monitoring,
    predict,
    registry,
    request_log,
    searches,
    services,
    tasks,
    uploads,
    users,
    v2,
)
from .api.converters import CONVERTERS
from .config import Settings, get_settings
from .context import ServiceContext, build_context

BLUEPRINTS = (
    health,
    docs,
    auth,
    users,
    init,
    predict,
    tasks,
    datasets,
    estimators,
    models,
    model_reports,
    batch_scoring,
    registry,
    monitoring,
    model_monitoring,
    v2,
    searches,
    console,  # the web console at /ui: static files, no Redis
)


class ServiceFlask(Flask):
    """Flask, remembering which views and hooks are plain functions.

    Flask asks ``inspect.iscoroutinefunction`` of every hook and the view on
    every request (seven calls for a prediction); the answer never changes.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plain: set[Callable[..., Any]] = set()

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func`` itself when it is a plain function (as Flask would say), else Flask's
        wrapper."""
        if func in self._plain:
            return func
        synced = super().ensure_sync(func)
        if synced is func:
            self._plain.add(func)
        return synced


def create_app(settings: Settings | None = None, ctx: ServiceContext | None = None) -> Flask:
    """Build the app: settings validated, Redis connected, blueprints registered.

    ``ctx``: the objects the routes work with, built from ``settings`` when not
    given (route tests pass their own, e.g. one whose broker is unreachable).
    """
    settings = settings or (ctx.settings if ctx is not None else get_settings())
    app = ServiceFlask(__name__, static_folder=None)
    app.request_class = uploads.StreamingRequest
    # NGINX says which scheme the client used (X-Forwarded-Proto): the served
    # contract names the service's own origin with it. It also appends the
    # client's address to X-Forwarded-For; the last entry (x_for=1) is the one
    # NGINX saw, which a client cannot forge: the failed-login counters go by it.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)  # type: ignore[method-assign]
    app.config.update(MAX_CONTENT_LENGTH=None)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # answers in the order built
    app.url_map.converters.update(CONVERTERS)
    services.install(app, ctx or build_context(settings))
    error_handler.register(app)
    request_log.register(app)  # the request id in every line logged while it runs
    uploads.register(app)  # an upload's body file NGINX wrote goes when its request ends
    for module in BLUEPRINTS:
        app.register_blueprint(module.bp)
    return app
