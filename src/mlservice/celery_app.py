"""The Celery application: broker and result backend on Redis, as the Celery ACL user.

Importing this module reads no configuration: :data:`app` is configured by
the entry points that use it, with :func:`configure`: the worker
(:mod:`mlservice.worker`, ``celery -A mlservice.worker worker``) and the API
(:func:`mlservice.context.build_context`). The tasks themselves live in the
:mod:`mlservice.tasks` package, which only workers import: the API sends a
task by its name (:class:`TaskName`, through ``ServiceContext.enqueue``), so
no Gunicorn worker loads training or plotting code. Which queue a task goes
to is :data:`ROUTES`, one table for senders and workers alike.

Queue names start with ``celery`` because the Celery Redis user may only
touch ``celery*`` keys (redis/render-acl.sh). Long work (training, init) goes
to ``celery.training``; short jobs (callbacks, the sweep) to ``celery``.

``celery -A mlservice.worker beat`` sends six periodic tasks. Every
:data:`SWEEP_SECONDS`: the sweep that resumes training whose worker died (see
:mod:`mlservice.store.leases`), the one that sends registry webhook
events whose delivery was lost (:mod:`mlservice.registry.events`), the
one that moves searches on (:mod:`mlservice.training.search_runs`), and the
one that sends scoring and profiling jobs again (:mod:`mlservice.store.job_runs`).
Every :data:`PARTIAL_FILES_SWEEP_SECONDS`: the one that removes partial files
dead writers left (:mod:`mlservice.store.artifacts`). Every ``[monitoring]
flush_seconds``: the flush of the prediction logs
(:mod:`mlservice.monitoring.prediction_log`). Its schedule lives in memory
(``celery.beat:Scheduler``): no schedule file, and no Redis keys beyond the
queue it sends to.
"""

from __future__ import annotations

from enum import StrEnum

from celery import Celery
from kombu import Queue

from .config import Settings

SHORT_QUEUE = "celery"
TRAINING_QUEUE = "celery.training"
#: How often ``celery beat`` sends the sweep of dead training runs.
SWEEP_SECONDS = 15.0
#: How often it sends the sweep of partial files dead writers left (a walk of the store).
PARTIAL_FILES_SWEEP_SECONDS = 300.0


class TaskName(StrEnum):
    """Every task's name: fixed strings, since messages already queued in Redis name them."""

    INIT_SERVICE = "mlservice.tasks.init_service"
    TRAIN_MODEL = "mlservice.tasks.train_model"
    SWEEP_TRAINING = "mlservice.tasks.sweep_training"
    SEND_CALLBACK = "mlservice.tasks.send_callback"
    SCORE_DATASET = "mlservice.tasks.score_dataset"
    PROFILE_DATASET = "mlservice.tasks.profile_dataset"
    SEND_REGISTRY_EVENTS = "mlservice.tasks.send_registry_events"
    SWEEP_REGISTRY_EVENTS = "mlservice.tasks.sweep_registry_events"
    START_SEARCH = "mlservice.tasks.start_search"
    RUN_TRIAL = "mlservice.tasks.run_search_trial"
    REFIT_SEARCH = "mlservice.tasks.refit_search"
    SWEEP_SEARCHES = "mlservice.tasks.sweep_searches"
    SWEEP_JOBS = "mlservice.tasks.sweep_jobs"
    SWEEP_PARTIAL_FILES = "mlservice.tasks.sweep_partial_files"
    FLUSH_PREDICTION_LOGS = "mlservice.tasks.flush_prediction_logs"
    EXPORT_PREDICTION_LOG = "mlservice.tasks.export_prediction_log"
    EXPLAIN = "mlservice.tasks.explain"


#: The queue of each task: long work on the training queue, short jobs on the other.
ROUTES: dict[str, str] = {
    TaskName.INIT_SERVICE: TRAINING_QUEUE,
    TaskName.TRAIN_MODEL: TRAINING_QUEUE,
    TaskName.SCORE_DATASET: TRAINING_QUEUE,
    TaskName.SWEEP_TRAINING: SHORT_QUEUE,
    TaskName.SEND_CALLBACK: SHORT_QUEUE,
    TaskName.PROFILE_DATASET: SHORT_QUEUE,
    TaskName.SEND_REGISTRY_EVENTS: SHORT_QUEUE,
    TaskName.SWEEP_REGISTRY_EVENTS: SHORT_QUEUE,
    # A search's steps: deciding the next trials is short; trials and the refit are long.
    TaskName.START_SEARCH: SHORT_QUEUE,
    TaskName.RUN_TRIAL: TRAINING_QUEUE,
    TaskName.REFIT_SEARCH: TRAINING_QUEUE,
    TaskName.SWEEP_SEARCHES: SHORT_QUEUE,
    TaskName.SWEEP_JOBS: SHORT_QUEUE,
    TaskName.SWEEP_PARTIAL_FILES: SHORT_QUEUE,
    # The prediction log: flushing is short; an export reads the whole log.
    TaskName.FLUSH_PREDICTION_LOGS: SHORT_QUEUE,
    TaskName.EXPORT_PREDICTION_LOG: TRAINING_QUEUE,
    # A client waits for an explanation: not behind trainings.
    TaskName.EXPLAIN: SHORT_QUEUE,
}

#: Tasks about one model, and the position of its id among their arguments (for log lines:
#: the API, which never imports a task, names the model of a task it sends).
MODEL_ID_ARGUMENT: dict[str, int] = {
    TaskName.TRAIN_MODEL: 0,
    TaskName.SEND_CALLBACK: 0,
    TaskName.SCORE_DATASET: 0,
    TaskName.EXPORT_PREDICTION_LOG: 0,
    TaskName.EXPLAIN: 0,
}

#: The modules defining the tasks: imported by workers only (``include``).
TASK_MODULES = (
    "mlservice.tasks.training_tasks",
    "mlservice.tasks.callback_tasks",
    "mlservice.tasks.scoring_tasks",
    "mlservice.tasks.profiling_tasks",
    "mlservice.tasks.registry_tasks",
    "mlservice.tasks.search_tasks",
    "mlservice.tasks.sweep_tasks",
    "mlservice.tasks.monitoring_tasks",
)

#: The service's one Celery app; its tasks are bound to it when their module is imported.
app = Celery("mlservice", include=list(TASK_MODULES))


def sender(settings: Settings) -> Celery:
    """A Celery app of its own for a context that sends tasks and reads their state.

    Not :data:`app`: that one is the worker's (its tasks are bound to it), and it is
    configured once per process, while each context (the API's, a test's) reaches
    the broker of its own settings.
    """
    return configure(Celery("mlservice", set_as_current=False), settings)


def configure(celery: Celery, settings: Settings) -> Celery:
    """Point ``celery`` at Redis from ``settings``, with every option explicit."""
    time_limit = settings.service.task_time_limit_seconds
    celery.conf.update(
        broker_url=settings.redis.celery_url,
        result_backend=settings.redis.celery_url,
        broker_connection_retry_on_startup=True,
        # A task whose worker dies mid-way is delivered again.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Prefork, with busy processes still known as busy after a broker reconnect.
        worker_pool="mlservice.worker_pool:TaskPool",
        # A lost broker connection does not stop running tasks: a training of an hour goes
        # on through a Redis restart of seconds (its lease, not its message, says it lives).
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # Redelivery of unacknowledged tasks must not happen while one still runs.
        broker_transport_options={"visibility_timeout": time_limit * 2},
        result_backend_transport_options={"visibility_timeout": time_limit * 2},
        task_time_limit=time_limit,
        task_soft_time_limit=max(1, time_limit - 30),
        task_track_started=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=7 * 24 * 3600,
        task_default_queue=SHORT_QUEUE,
        task_queues=(Queue(SHORT_QUEUE), Queue(TRAINING_QUEUE)),
        task_routes={name: {"queue": queue} for name, queue in ROUTES.items()},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        beat_scheduler="celery.beat:Scheduler",
        beat_schedule={
            "sweep-training": {
                "task": TaskName.SWEEP_TRAINING.value,
                "schedule": SWEEP_SECONDS,
                # A sweep nobody ran in time is dropped: the next one does the same.
                "options": {"queue": SHORT_QUEUE, "expires": SWEEP_SECONDS, "ignore_result": True},
            },
            "sweep-registry-events": {
                "task": TaskName.SWEEP_REGISTRY_EVENTS.value,
                "schedule": SWEEP_SECONDS,
                "options": {"queue": SHORT_QUEUE, "expires": SWEEP_SECONDS, "ignore_result": True},
            },
            "sweep-searches": {
                "task": TaskName.SWEEP_SEARCHES.value,
                "schedule": SWEEP_SECONDS,
                "options": {"queue": SHORT_QUEUE, "expires": SWEEP_SECONDS, "ignore_result": True},
            },
            "sweep-jobs": {
                "task": TaskName.SWEEP_JOBS.value,
                "schedule": SWEEP_SECONDS,
                "options": {"queue": SHORT_QUEUE, "expires": SWEEP_SECONDS, "ignore_result": True},
            },
            "sweep-partial-files": {
                "task": TaskName.SWEEP_PARTIAL_FILES.value,
                "schedule": PARTIAL_FILES_SWEEP_SECONDS,
                "options": {
                    "queue": SHORT_QUEUE,
                    "expires": PARTIAL_FILES_SWEEP_SECONDS,
                    "ignore_result": True,
                },
            },
            "flush-prediction-logs": {
                "task": TaskName.FLUSH_PREDICTION_LOGS.value,
                "schedule": settings.monitoring.flush_seconds,
                "options": {
                    "queue": SHORT_QUEUE,
                    "expires": settings.monitoring.flush_seconds,
                    "ignore_result": True,
                },
            },
        },
    )
    return celery
