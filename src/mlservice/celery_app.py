"""The Celery application: broker and result backend on Redis, as the Celery ACL user.

Importing this module reads no configuration: :data:`app` is configured by
the entry points that use it, with :func:`configure`: the worker
(:mod:`mlservice.worker`, ``celery -A mlservice.worker worker``) and the API
(:func:`mlservice.context.build_context`). The tasks themselves live in
:mod:`mlservice.training.celery_tasks`.

Queue names start with ``celery`` because the Celery Redis user may only
touch ``celery*`` keys (redis/render-acl.sh). Long work (training, init) goes
to ``celery.training``; short jobs (callbacks, the sweep) to ``celery``.

``celery -A mlservice.worker beat`` sends one periodic task: the sweep that
resumes training runs whose worker died (every :data:`SWEEP_SECONDS`; see
:mod:`mlservice.training.jobs`). Its schedule lives in memory
(``celery.beat:Scheduler``): no schedule file, and no Redis keys beyond the
queue it sends to.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from .config import Settings

SHORT_QUEUE = "celery"
TRAINING_QUEUE = "celery.training"
#: How often ``celery beat`` sends the sweep of dead training runs.
SWEEP_SECONDS = 15.0

#: The service's one Celery app; its tasks are bound to it when their module is imported.
app = Celery(
    "mlservice",
    include=[
        "mlservice.training.celery_tasks",
        "mlservice.serving.scoring_tasks",
        "mlservice.store.dataset_tasks",
    ],
)


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
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        beat_scheduler="celery.beat:Scheduler",
        beat_schedule={
            "sweep-training": {
                "task": "mlservice.tasks.sweep_training",
                "schedule": SWEEP_SECONDS,
                # A sweep nobody ran in time is dropped: the next one does the same.
                "options": {"queue": SHORT_QUEUE, "expires": SWEEP_SECONDS, "ignore_result": True},
            }
        },
    )
    return celery
