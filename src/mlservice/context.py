"""The service's shared objects, built once per process from the settings.

The Flask app, the Celery tasks and the CLI all work through one
:class:`ServiceContext`, so they store and read things the same way. The API
reaches its context with :func:`mlservice.api.services.services`; a Celery
worker with :func:`worker_context`. :func:`process_name` says which process
of which host (or container) did a piece of work.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass

import redis
from celery import Celery

from . import celery_app, redis_client, security
from .config import Settings, get_settings
from .serving.cache import ModelCache
from .serving.recent_reads import RecentReads
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
    recent: RecentReads
    tokens: security.VerifiedTokens


@functools.cache
def process_name() -> str:
    """``<host name>:<process id>``: who answered a prediction (``X-Served-By``) or trained a
    model (its ``worker``); in Docker the host name is the container, so it names the replica.

    Computed once per process: forgotten in a forked child (Gunicorn's and Celery's
    workers), which has a process id of its own.
    """
    return f"{socket.gethostname()}:{os.getpid()}"


os.register_at_fork(after_in_child=process_name.cache_clear)


def build_context(settings: Settings) -> ServiceContext:
    """Connect to Redis, configure Celery, resolve the secret and wire the domain objects."""
    store = redis_client.connect(settings.redis)
    secret = security.service_secret(store, settings.security.secret_key)
    artifacts = ArtifactStore(settings.artifact_dir, settings.service.artifacts_world_readable)
    model_catalog = Catalog[ModelRecord](store, "model")
    return ServiceContext(
        settings=settings,
        store=store,
        celery=celery_app.configure(celery_app.app, settings),
        secret=secret,
        datasets=Datasets(Catalog[DatasetRecord](store, "dataset"), artifacts),
        models=Models(model_catalog, artifacts, store, secret),
        cache=ModelCache(store, secret, settings.inference),
        recent=RecentReads(store, model_catalog, settings.inference.freshness_ms / 1000),
        tokens=security.VerifiedTokens(secret),
    )


@functools.cache
def worker_context() -> ServiceContext:
    """The context of a Celery worker process (built on first use, after the fork)."""
    return build_context(get_settings())
