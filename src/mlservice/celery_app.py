"""The Celery application: broker and result backend on Redis, as the Celery ACL user.

Start a worker with::

    celery -A mlservice.celery_app worker -Q celery,celery.training

Queue names start with ``celery`` because the Celery Redis user may only
touch ``celery*`` keys (redis/render-acl.sh). Long work (training, init) goes
to ``celery.training``; short jobs to ``celery``.
"""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_init
from kombu import Queue

from .config import ConfigError, get_settings

SHORT_QUEUE = "celery"
TRAINING_QUEUE = "celery.training"


def create_celery() -> Celery:
    """Build the Celery app from the service settings, every option explicit."""
    try:
        settings = get_settings()
    except ConfigError as exc:
        raise SystemExit(f"mlservice: {exc}") from None
    app = Celery("mlservice", include=["mlservice.tasks"])
    app.conf.update(
        broker_url=settings.redis.celery_url,
        result_backend=settings.redis.celery_url,
        broker_connection_retry_on_startup=True,
        # A task whose worker dies mid-way is delivered again.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Redelivery of unacknowledged tasks must not happen while one still runs.
        broker_transport_options={"visibility_timeout": settings.task_time_limit * 2},
        result_backend_transport_options={"visibility_timeout": settings.task_time_limit * 2},
        task_time_limit=settings.task_time_limit,
        task_soft_time_limit=max(1, settings.task_time_limit - 30),
        task_track_started=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=7 * 24 * 3600,
        task_default_queue=SHORT_QUEUE,
        task_queues=(Queue(SHORT_QUEUE), Queue(TRAINING_QUEUE)),
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


app = create_celery()


@worker_init.connect
def _check_before_work(**_: object) -> None:
    """Refuse to start a worker with a bad default model or wrong Redis credentials.

    Celery logs and swallows exceptions from signal handlers; SystemExit gets through.
    """
    from . import preflight

    try:
        preflight.check(get_settings())
    except ConfigError as exc:
        raise SystemExit(f"mlservice: {exc}") from None
