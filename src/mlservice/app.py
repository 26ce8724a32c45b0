"""The Flask application factory (Gunicorn runs ``mlservice.app:create_app()``)."""

from __future__ import annotations

from flask import Flask, current_app

from .config import Settings, get_settings
from .context import ServiceContext, build_context
from .api.uploads import StreamingRequest


def services() -> ServiceContext:
    """The current app's :class:`ServiceContext` (call inside a request)."""
    return current_app.extensions["mlservice"]


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app: settings validated, Redis connected, blueprints registered."""
    settings = settings or get_settings()
    app = Flask(__name__)
    app.request_class = StreamingRequest
    app.config.update(JSON_SORT_KEYS=False, MAX_CONTENT_LENGTH=None)
    app.extensions["mlservice"] = build_context(settings)

    from .api import (auth, datasets, errors, estimators, health, models, predict, service,
                      tasks, users)

    errors.register(app)
    for module in (health, auth, users, service, predict, tasks, datasets, estimators, models):
        app.register_blueprint(module.bp)
    return app
