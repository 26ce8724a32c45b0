"""Start-up checks: fail fast, with one clear line, before serving anything."""

from __future__ import annotations

import time

import redis

from .config import ConfigError, Settings
from .training.allowed_estimators import EstimatorError, make_estimator


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
                    f"{settings.redis_config_path}: cannot reach Redis at {where} (HOST/PORT): "
                    f"{exc}"
                ) from None
            time.sleep(0.5)
        finally:
            client.close()


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


def check(settings: Settings, wait_seconds: float = 30.0) -> None:
    """Everything a process checks before it serves: the default model, then Redis logins."""
    check_default_model(settings)
    check_redis_users(settings, wait_seconds)
