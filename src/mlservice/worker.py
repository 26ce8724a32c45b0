"""The Celery worker's entry point: ``celery -A mlservice.worker worker -Q celery,celery.training``.

Importing this module is what starts a worker's configuration: it reads the
settings into :data:`mlservice.celery_app.app` (or exits with one line naming
the bad key), and before the worker takes work it checks the default model
and both Redis logins (:mod:`mlservice.preflight`). Nothing else imports it.

``celery -A mlservice.worker beat`` uses it too: beat sends the periodic sweep
that resumes training whose worker died (see :mod:`mlservice.celery_app`).
"""

from __future__ import annotations

import logging
import warnings

from celery.exceptions import CPendingDeprecationWarning
from celery.signals import setup_logging, worker_init, worker_process_init, worker_ready

from . import logs, preflight, worker_metrics, worker_threads
from .celery_app import app, configure
from .config import ConfigError, get_settings
from .store.artifacts import ArtifactStore

__all__ = ["app"]

try:
    configure(app, get_settings())
except ConfigError as exc:
    raise SystemExit(f"mlservice: {exc}") from None


@setup_logging.connect
def _log_lines(loglevel: int | str | None = None, **_: object) -> None:
    """Worker, task and beat lines in the [logging] format, each with its task's context.

    With a receiver of this signal, Celery leaves logging alone; the task's id,
    name, model and request id come from :mod:`mlservice.logs`.
    """
    logs.configure(get_settings().logging.format, loglevel or logging.INFO)


@worker_init.connect
def _check_before_work(**_: object) -> None:
    """Refuse to start a worker with a bad default model or wrong Redis credentials.

    Celery logs and swallows exceptions from signal handlers; SystemExit gets through.
    """
    try:
        preflight.check(get_settings())
    except ConfigError as exc:
        raise SystemExit(f"mlservice: {exc}") from None


worker_metrics.connect()


@worker_init.connect
def _serve_metrics(**_: object) -> None:
    """Task metrics on the worker's own port ([metrics] worker_port), before the pool starts."""
    worker_metrics.serve(get_settings().metrics)


@worker_init.connect
def _share_cores(sender: object = None, **_: object) -> None:
    """Plan each pool process's native threads (cores / pool processes), before the fork."""
    worker_threads.plan(int(getattr(sender, "concurrency", 0) or 1))


@worker_process_init.connect
def _limit_threads(**_: object) -> None:
    """A pool process starts: its native thread pools get its share of the cores."""
    worker_threads.apply()


@worker_init.connect
def _sweep_partial_files(**_: object) -> None:
    """Remove the partial files writers killed before this start left (a failure is logged:
    the periodic sweep tries again)."""
    settings = get_settings()
    store = ArtifactStore(settings.artifact_dir, settings.service.artifacts_world_readable)
    try:
        store.sweep_partial()
    except OSError:
        logging.getLogger(__name__).exception("partial files not swept at start")


@worker_ready.connect
def _quiet_cancel_warning(**_: object) -> None:
    """No multi-line warning at every broker reconnect about cancelling running tasks.

    Not cancelling them is this service's choice (``celery_app.configure``), which
    Celery 5.x warns about on each connection loss; Celery's own "always" filter is set
    with its logging, before this signal.
    """
    warnings.filterwarnings(
        "ignore",
        message=r"\s*In Celery 5\.1 we introduced an optional breaking change",
        category=CPendingDeprecationWarning,
    )
