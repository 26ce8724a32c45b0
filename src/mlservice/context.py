"""The service's shared objects, built once per process from the settings: the wiring.

The Flask app, the Celery tasks and the CLI all work through one
:class:`ServiceContext`, so they store and read things the same way. The API
reaches its context with :func:`mlservice.api.services.services`; a Celery
worker with :func:`worker_context`. This module sits above the domain
packages (it builds their objects) and below the edges that use it: nothing
in ``store``, ``serving``, ``training`` (or any other domain package) imports
it, which ``tests/unit/test_layout.py`` checks.

Work for the Celery workers is sent with :meth:`ServiceContext.enqueue`, by
the task's name: the API never imports a task module, so no Gunicorn worker
loads training, ONNX conversion or plotting code.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery

from . import celery_app, logs, redis_client, security
from .accounts import Accounts
from .celery_app import TaskName
from .config import Settings, get_settings
from .errors import Unavailable
from .monitoring.monitor import Monitor
from .monitoring.prediction_log import PredictionLog
from .monitoring.recorder import PredictionRecorder
from .registry import registry_records
from .registry.registered_models import Registry
from .registry.shadow import ShadowPool
from .serving.cache import ModelCache
from .serving.hot_reads import HotReads
from .store.artifacts import ArtifactStore
from .store.catalog import Catalog
from .store.dataset_files import Datasets
from .store.job_runs import JobRuns
from .store.key_tracking import KeyTracker
from .store.model_store import ModelStore
from .store.records import DatasetRecord, ModelRecord
from .store.report_files import ReportFiles
from .store.search_records import SearchStore
from .store.training_runs import TrainingRuns
from .task_status import TaskOwners

log = logging.getLogger(__name__)

#: Keys whose changes each API worker hears of at once (users, models, registered names,
#: versions and aliases: the hot path's).
TRACKED_PREFIXES = (
    redis_client.key("user", ""),
    redis_client.key("model", ""),
    *registry_records.TRACKED_PREFIXES,
)
#: Seconds a client should wait before it retries when Redis (or the broker) is down.
RETRY_AFTER_SECONDS = 5


@dataclass
class ServiceContext:
    """Settings, Redis, Celery, the service secret and the domain objects over them."""

    settings: Settings
    redis: redis.Redis
    celery: Celery
    secret: str
    accounts: Accounts
    task_owners: TaskOwners
    datasets: Datasets
    models: ModelStore
    reports: ReportFiles
    cache: ModelCache
    hot: HotReads
    tokens: security.VerifiedTokens
    registry: Registry
    shadow: ShadowPool
    searches: SearchStore
    #: Batch scoring jobs (job id: the output data set's) and profiling jobs (the data
    #: set's), under leases: a dead worker's job is sent again by the sweep.
    scoring_runs: JobRuns
    profiling_runs: JobRuns
    #: Prediction logs and drift samples (docs/monitoring.md): their files and buffers,
    #: the API's writer of them, and drift.
    prediction_log: PredictionLog
    recorder: PredictionRecorder
    monitor: Monitor

    def enqueue(
        self,
        name: TaskName,
        args: Sequence[Any] = (),
        *,
        task_id: str | None = None,
        owner: str | None = None,
        undo: Callable[[], object] | None = None,
        time_limits: tuple[float, float] | None = None,
        request_id: str | None = None,
    ) -> str:
        """Send the task ``name`` to the workers (its queue: ``celery_app.ROUTES``); its id.

        ``owner``, the account id of the user who may follow it, is recorded
        before it is sent. When the broker cannot take the task, ``undo`` runs
        (the record made for it goes, say) and
        :class:`~mlservice.errors.Unavailable` (503, retry) is raised: nothing is
        left waiting for a task that was never sent. ``time_limits``: this task's
        (soft, hard) time limits in seconds, instead of the worker's. ``request_id``: the
        request the task belongs to, when it is not the one being handled (work the
        sweep sends again keeps the request id of the request that started it).
        """
        options: dict[str, Any] = {}
        if time_limits is not None:
            options = {"soft_time_limit": time_limits[0], "time_limit": time_limits[1]}
        if request_id is not None:
            options["headers"] = {logs.TASK_HEADER: request_id}
        if owner is not None and task_id is not None:
            self.task_owners.record(task_id, owner)
        try:
            result = self.celery.send_task(
                name.value,
                args=tuple(args),
                task_id=task_id,
                add_to_parent=False,
                **options,
            )
        except redis_client.UNREACHABLE as exc:
            log.warning("task %s not sent: the broker is not reachable: %s", name.value, exc)
            if undo is not None:
                try:
                    undo()
                except Exception:
                    log.exception("task %s not sent, and its undo failed", name.value)
            raise Unavailable(
                "the task queue (Redis) is not reachable, so nothing was started; retry shortly",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            ) from None
        if owner is not None and task_id is None:
            self.task_owners.record(result.id, owner)
        return str(result.id)

    def send_registry_events(self, name: str) -> None:
        """Send ``name``'s pending registry events to its webhook (a task). If the broker
        cannot take it now, the events stay pending in Redis and the sweep sends them."""
        try:
            self.enqueue(TaskName.SEND_REGISTRY_EVENTS, (name,))
        except Unavailable:
            log.warning("registry events of %s left to the sweep: the broker is away", name)

    def revoke(self, task_id: str) -> None:
        """Stop a task: dropped if queued, its process stopped (TERM) if running.

        Best effort: the task also checks at start that its work is still wanted (a
        worker that starts later never heard of the revoke).
        """
        try:
            self.celery.control.revoke(task_id, terminate=True, signal="SIGTERM")
        except Exception:  # broker away: the task finds its work gone when it runs
            log.warning("could not revoke task %s", task_id)


def build_context(settings: Settings) -> ServiceContext:
    """Connect to Redis, configure Celery, resolve the secret and wire the domain objects."""
    connection = redis_client.connect(settings.redis)
    secret = security.service_secret(connection, settings.security.secret_key)
    artifacts = ArtifactStore(settings.artifact_dir, settings.service.artifacts_world_readable)
    model_catalog = Catalog(connection, Catalog.MODELS, ModelRecord)
    runs = TrainingRuns(connection, artifacts)
    cache = ModelCache(connection, secret, settings.inference)
    registry = Registry(connection, model_catalog)
    prediction_log = PredictionLog(connection, artifacts, settings.monitoring)
    ctx = ServiceContext(
        settings=settings,
        redis=connection,
        celery=celery_app.sender(settings),
        secret=secret,
        accounts=Accounts(connection, settings.limits),
        task_owners=TaskOwners(connection),
        datasets=Datasets(
            Catalog(connection, Catalog.DATASETS, DatasetRecord), artifacts, settings.limits
        ),
        models=ModelStore(model_catalog, artifacts, connection, secret, runs),
        reports=ReportFiles(artifacts),
        cache=cache,
        hot=HotReads(connection, model_catalog, KeyTracker(connection, TRACKED_PREFIXES)),
        tokens=security.VerifiedTokens(secret),
        registry=registry,
        shadow=ShadowPool(
            connection,
            cache,
            settings.inference.shadow_threads,
            settings.inference.shadow_queue,
        ),
        searches=SearchStore(connection, artifacts),
        scoring_runs=JobRuns(connection, "scoring", settings.service.max_job_deliveries),
        profiling_runs=JobRuns(connection, "profiling", settings.service.max_job_deliveries),
        prediction_log=prediction_log,
        recorder=PredictionRecorder(prediction_log, settings.monitoring),
        monitor=Monitor(connection, prediction_log, settings.monitoring),
    )
    registry.announce = ctx.send_registry_events
    return ctx


@functools.cache
def worker_context() -> ServiceContext:
    """The context of a Celery worker process (built on first use, after the fork)."""
    return build_context(get_settings())
