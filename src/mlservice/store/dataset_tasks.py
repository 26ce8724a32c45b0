"""The Celery task that profiles a large upload after the API has answered 202.

Profiling reads the whole file again, slower than the disk writes it, so an
upload over ``[service] inline_profile_mb`` is only stored by the request; this
task then calls :meth:`~mlservice.store.dataset_files.Datasets.finish_profiling`,
the same profile and the same messages as a small upload gets in the request.
The data set's record says the outcome (``ready`` or ``failed``); the task's
state says it too, for the ``status_url`` of the 202.

Delivered again (``acks_late``: its worker died), the task profiles again from
the start, or finds the record already settled and answers its outcome.
"""

from __future__ import annotations

from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from ..celery_app import SHORT_QUEUE, app
from ..context import worker_context
from ..errors import NotFound
from .records import DatasetRecord, DatasetStatus


class ProfilingFailed(Exception):
    """The upload is not a readable table; the message is the data set's ``error``."""


@app.task(name="mlservice.tasks.profile_dataset", queue=SHORT_QUEUE, throws=(ProfilingFailed,))
def profile_dataset(dataset_id: str) -> dict[str, Any]:
    """Profile the data set and record the outcome; raises :class:`ProfilingFailed` on a bad file.

    A data set deleted before or while it is profiled leaves nothing behind.
    """
    datasets = worker_context().datasets
    try:
        try:
            record = datasets.finish_profiling(dataset_id)
        except SoftTimeLimitExceeded:
            limit = worker_context().settings.service.task_time_limit_seconds
            why = f"profiling was stopped: over [service] task_time_limit_seconds = {limit}"
            record = datasets.fail(dataset_id, why)
        except NotFound:
            raise
        except Exception as exc:  # a bug, not the file: settle the record, keep the traceback
            datasets.fail(dataset_id, f"profiling failed: {type(exc).__name__}: {exc}")
            raise
    except NotFound:
        datasets.discard(dataset_id)
        return {"dataset_id": dataset_id, "status": "deleted"}
    return _outcome(record)


def _outcome(record: DatasetRecord) -> dict[str, Any]:
    """The task's result for a settled data set (a failure is the task's failure)."""
    if record.get("status") == DatasetStatus.FAILED:
        raise ProfilingFailed(record.get("error", "unknown error"))
    return {"dataset_id": record["id"], "status": record.get("status"), "rows": record.get("rows")}
