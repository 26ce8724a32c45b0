"""The Celery worker's metrics: task outcomes from Celery's signals, served on their own port.

Tasks run in the prefork pool's processes, and some outcomes are decided in
the worker's main process (a revoke, a hard time limit), so every one of them
writes to the worker's multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``)
and the main process serves the sum on ``[metrics] worker_host:worker_port``
(:func:`serve`, at ``worker_init``, before the pool starts). Without that
directory the pool's counts could not be seen, so nothing is served and the
log says why.

:func:`connect` wires the signals; :mod:`mlservice.worker` calls it, so only
Celery workers (and beat, which runs no task) listen.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from celery.signals import (
    task_failure,
    task_postrun,
    task_prerun,
    task_rejected,
    task_retry,
    task_revoked,
    task_success,
    task_unknown,
    worker_process_shutdown,
)
from prometheus_client import start_http_server

from . import telemetry
from .config import MetricsSettings

log = logging.getLogger(__name__)

#: When each running task started (by task id), in this process.
_started: dict[str, float] = {}
_started_lock = threading.Lock()


def serve(settings: MetricsSettings) -> bool:
    """Empty the multiprocess directory and serve the worker's metrics; False if not served."""
    if not settings.worker_port:
        return False
    directory = telemetry.multiprocess_directory()
    if directory is None:
        log.warning(
            "worker metrics are off: set %s to a directory for the pool's processes "
            "(make run and Compose do)",
            telemetry.MULTIPROC_ENV,
        )
        return False
    telemetry.clear_directory(directory)
    try:
        start_http_server(settings.worker_port, settings.worker_host, registry=telemetry.registry())
    except OSError as exc:
        log.warning(
            "worker metrics are off: cannot listen on %s:%d ([metrics] worker_host, "
            "worker_port): %s",
            settings.worker_host,
            settings.worker_port,
            exc,
        )
        return False
    log.info("worker metrics on http://%s:%d/metrics", settings.worker_host, settings.worker_port)
    return True


def _name(sender: Any) -> str | None:
    """The task name of a signal whose sender is a task (or names one)."""
    return getattr(sender, "name", None)


def _on_success(sender: Any = None, **_: Any) -> None:
    telemetry.task_outcome(_name(sender), "success")


def _on_failure(sender: Any = None, **_: Any) -> None:
    telemetry.task_outcome(_name(sender), "failure")


def _on_retry(sender: Any = None, **_: Any) -> None:
    telemetry.task_outcome(_name(sender), "retry")


def _on_revoked(sender: Any = None, **_: Any) -> None:
    telemetry.task_outcome(_name(sender), "revoked")


def _on_rejected(message: Any = None, **_: Any) -> None:
    headers = getattr(message, "headers", None) or {}
    telemetry.task_outcome(headers.get("task"), "rejected")


def _on_unknown(name: str | None = None, **_: Any) -> None:
    telemetry.task_outcome(name, "unknown")


def _on_prerun(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        with _started_lock:
            _started[task_id] = time.monotonic()


def _on_postrun(
    task_id: str | None = None, sender: Any = None, state: str | None = None, **_: Any
) -> None:
    with _started_lock:
        started = _started.pop(task_id or "", None)
    name = _name(sender)
    if started is not None and name:
        outcome = (state or "unknown").lower()
        telemetry.training_finished(name, outcome, time.monotonic() - started)


def _on_process_shutdown(**_: Any) -> None:
    telemetry.process_exited(os.getpid())


def connect() -> None:
    """Listen to Celery's task signals (strong references: the handlers are module functions)."""
    task_success.connect(_on_success, weak=False)
    task_failure.connect(_on_failure, weak=False)
    task_retry.connect(_on_retry, weak=False)
    task_revoked.connect(_on_revoked, weak=False)
    task_rejected.connect(_on_rejected, weak=False)
    task_unknown.connect(_on_unknown, weak=False)
    task_prerun.connect(_on_prerun, weak=False)
    task_postrun.connect(_on_postrun, weak=False)
    worker_process_shutdown.connect(_on_process_shutdown, weak=False)
