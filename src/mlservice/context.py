"""The service's shared objects, built once per process from the settings.

The Flask app, the Celery tasks and the CLI all work through one
:class:`ServiceContext`, so they store and read things the same way.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import redis

from . import redis_client, security
from .catalog import Catalog
from .config import Settings
from .datasets import Datasets
from .model_cache import ModelCache
from .models import Models
from .storage import ArtifactStore


@dataclass
class ServiceContext:
    """Settings, Redis, the service secret and the domain objects over them."""

    settings: Settings
    store: redis.Redis
    secret: str
    datasets: Datasets
    models: Models
    cache: ModelCache
    tokens: security.VerifiedTokens


def build_context(settings: Settings) -> ServiceContext:
    """Connect to Redis, resolve the secret and wire the domain objects."""
    store = redis_client.connect(settings.redis)
    secret = security.service_secret(store, settings.secret_key)
    artifacts = ArtifactStore(settings.artifact_dir)
    return ServiceContext(
        settings=settings,
        store=store,
        secret=secret,
        datasets=Datasets(Catalog(store, "dataset"), artifacts),
        models=Models(Catalog(store, "model"), artifacts, store, secret),
        cache=ModelCache(store, secret, settings.inference),
        tokens=security.VerifiedTokens(secret),
    )


@functools.cache
def worker_context() -> ServiceContext:
    """The context of a Celery worker process (built on first use, after the fork)."""
    from .config import get_settings

    return build_context(get_settings())
