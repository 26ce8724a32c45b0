"""Start-up checks: fail fast, with one clear line, before serving anything."""

from __future__ import annotations

import time

import redis

from .config import ConfigError, Settings
from .training.allowed_estimators import EstimatorError, make_estimator


def redis_location(settings: Settings) -> str:
    """Where Redis is looked for, and which settings say so (for one-line errors)."""
    return (
        f"Redis at {settings.redis.host}:{settings.redis.port} (HOST and PORT in "
        f"{settings.redis_config_path}, or MLSERVICE_REDIS_HOST / MLSERVICE_REDIS_PORT)"
    )


def _ping(url: str, user: str, settings: Settings, wait_seconds: float) -> None:
    """Ping Redis as ``user``, waiting a while for it to come up; explain a failure."""
    where = f"{settings.redis.host}:{settings.redis.port}"
    deadline = time.monotonic() + wait_seconds
    while True:
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        try:
            client.ping()
            return
        except redis.AuthenticationError:
            raise ConfigError(
                f"{settings.redis_config_path}: Redis at {where} refused user {user!r}: wrong "
                "password (check the file against the ACL Redis was started with)"
            ) from None
        except redis.ConnectionError as exc:
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"cannot reach {redis_location(settings)}: {str(exc).splitlines()[0]}"
                ) from None
            time.sleep(0.5)
        finally:
            client.close()


def check_app_login(settings: Settings, wait_seconds: float = 0) -> None:
    """The app's ACL user can log in to Redis (the CLI, before it does anything)."""
    _ping(settings.redis.app_url, settings.redis.master_user, settings, wait_seconds)


def check_redis_users(settings: Settings, wait_seconds: float = 30.0) -> None:
    """Both ACL users (app and Celery) can log in to Redis."""
    _ping(settings.redis.app_url, settings.redis.master_user, settings, wait_seconds)
    _ping(settings.redis.celery_url, settings.redis.celery_user, settings, wait_seconds)


def check_default_model(settings: Settings) -> None:
    """``[default_model]`` names an allowed estimator with valid parameters."""
    model = settings.default_model
    try:
        make_estimator(model.estimator, model.params)
    except EstimatorError as exc:
        raise ConfigError(f"{settings.config_path}: [default_model] {exc}") from None


def check_openapi_file(settings: Settings) -> None:
    """The contract served at /openapi.yaml and /docs is there to be read."""
    path = settings.openapi_file
    if not path.is_file():
        raise ConfigError(
            f"{settings.config_path}: [api] openapi_file: {path} not found; point it (or "
            "MLSERVICE_OPENAPI_FILE) at ml-service.yml"
        )


def check_password_hashing(settings: Settings) -> None:
    """Password hashing leaves each gthread API worker a thread for everything else.

    A request hashing or waiting for a hashing turn holds one of the worker's
    threads: if they could all be held, a flood of logins would keep every
    prediction queued behind it (see :mod:`mlservice.password_hashing`).
    """
    limits, api = settings.limits, settings.api
    held = limits.password_hashes_at_once + limits.password_hashes_queued
    if api.worker_class == "gthread" and held >= api.threads:
        raise ConfigError(
            f"{settings.config_path}: [limits] password_hashes_at_once + password_hashes_queued "
            f"= {held} would hold all [api] threads = {api.threads} of an API worker during a "
            "flood of logins; keep their sum below threads (raise threads or lower them)"
        )


def check(settings: Settings, wait_seconds: float = 30.0) -> None:
    """Everything a process checks before it serves: its files, then the Redis logins."""
    check_default_model(settings)
    check_openapi_file(settings)
    check_password_hashing(settings)
    check_redis_users(settings, wait_seconds)
