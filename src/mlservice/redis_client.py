"""Connections to Redis as the application's ACL user.

The Celery transport connects as its own, least-privileged user (see
:mod:`mlservice.celery_app`); everything else the service stores in Redis
(users, the service secret, task owners, the model cache) goes through the
connection made here. Every key starts with :data:`PREFIX`.
"""

from __future__ import annotations

import functools
from typing import Any

import kombu.exceptions
import redis

from .config import RedisSettings

PREFIX = "mlservice:"

#: Exceptions that mean Redis (store, broker or result backend) cannot be reached now.
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, kombu.exceptions.OperationalError)


@functools.cache
def connect(settings: RedisSettings) -> redis.Redis:
    """One connection pool per process (redis-py reopens it after a fork)."""
    return redis.Redis.from_url(
        settings.app_url,
        health_check_interval=30,
        socket_connect_timeout=5,
        # A Redis that stops answering fails the request (503) instead of hanging it.
        socket_timeout=10,
        socket_keepalive=True,
    )


def key(*parts: str) -> str:
    """``mlservice:<part>:<part>...``: one place that knows the key layout's prefix."""
    return PREFIX + ":".join(parts)


def text(raw: Any) -> str | None:
    """A Redis reply as text, ``None`` for a missing key (replies arrive as bytes)."""
    if raw is None:
        return None
    return raw.decode() if isinstance(raw, bytes) else str(raw)
