"""The Flask application factory (Gunicorn runs ``mlservice.app:create_app()``)."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import Flask, current_app

from . import redis_client, security
from .config import Settings, get_settings
from .model_cache import ModelCache


@dataclass
class Services:
    """What the routes share within one worker process."""

    settings: Settings
    store: redis.Redis
    secret: str
    models: ModelCache


def services() -> Services:
    """The current app's :class:`Services` (call inside a request)."""
    return current_app.extensions["mlservice"]


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app: settings validated, Redis connected, blueprints registered."""
    settings = settings or get_settings()
    app = Flask(__name__)
    app.config.update(JSON_SORT_KEYS=False, MAX_CONTENT_LENGTH=None)
    store = redis_client.connect(settings.redis)
    secret = security.service_secret(store, settings.secret_key)
    app.extensions["mlservice"] = Services(settings, store, secret, ModelCache(store, secret))

    from .api import auth, errors, health, predict, service, tasks, users

    errors.register(app)
    for module in (health, auth, users, service, predict, tasks):
        app.register_blueprint(module.bp)
    return app
