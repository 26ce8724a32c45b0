"""The Flask application factory (Gunicorn runs ``mlservice.app:create_app()``)."""

from __future__ import annotations

from flask import Flask

from .api import (
    auth,
    datasets,
    error_handler,
    estimators,
    health,
    init,
    models,
    predict,
    services,
    tasks,
    users,
)
from .api.uploads import StreamingRequest
from .config import Settings, get_settings
from .context import build_context

BLUEPRINTS = (health, auth, users, init, predict, tasks, datasets, estimators, models)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app: settings validated, Redis connected, blueprints registered."""
    settings = settings or get_settings()
    app = Flask(__name__, static_folder=None)
    app.request_class = StreamingRequest
    app.config.update(JSON_SORT_KEYS=False, MAX_CONTENT_LENGTH=None)
    services.install(app, build_context(settings))
    error_handler.register(app)
    for module in BLUEPRINTS:
        app.register_blueprint(module.bp)
    return app
