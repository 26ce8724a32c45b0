"""The service's shared objects, built once per process from the settings.

The Flask app, the Celery tasks and the CLI all work through one
:class:`ServiceContext`, so they store and read things the same way. The API
reaches its context with :func:`mlservice.api.services.services`; a Celery
worker with :func:`worker_context`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import redis
from celery import Celery

from . import celery_app, redis_client, security
from .config import Settings, get_settings
from .serving.cache import ModelCache
from .store.artifacts import ArtifactStore
from .store.catalog import Catalog
from .store.dataset_files import Datasets
from .store.model_lifecycle import Models
from .store.records import DatasetRecord, ModelRecord


@dataclass
class ServiceContext:
    """Settings, Redis, Celery, the service secret and the domain objects over them."""

    settings: Settings
    store: redis.Redis
    celery: Celery
    secret: str
    datasets: Datasets
    models: Models
    cache: ModelCache
    tokens: security.VerifiedTokens


def build_context(settings: Settings) -> ServiceContext:
    """Connect to Redis, configure Celery, resolve the secret and wire the domain objects."""
    store = redis_client.connect(settings.redis)
    secret = security.service_secret(store, settings.security.secret_key)
    artifacts = ArtifactStore(settings.artifact_dir)
    return ServiceContext(
        settings=settings,
        store=store,
        celery=celery_app.configure(celery_app.app, settings),
        secret=secret,
        datasets=Datasets(Catalog[DatasetRecord](store, "dataset"), artifacts),
        models=Models(Catalog[ModelRecord](store, "model"), artifacts, store, secret),
        cache=ModelCache(store, secret, settings.inference),
        tokens=security.VerifiedTokens(secret),
    )


@functools.cache
def worker_context() -> ServiceContext:
    """The context of a Celery worker process (built on first use, after the fork)."""
    return build_context(get_settings())
