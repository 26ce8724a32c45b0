"""The task that profiles a large upload after the API has answered 202.

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

from ..celery_app import TaskName, app
from ..errors import NotFound
from ..store.dataset_files import profiling_outcome
from .base import ServiceTask

#: A data set's ``error`` when profiling failed on an error of the service's own (Celery
#: logs it, with the task id).
INTERNAL_ERROR = (
    "profiling failed on an error in the service (logged with the task id): upload the "
    "file again, and if it fails again, tell the service's operator"
)


@app.task(bind=True, base=ServiceTask, name=TaskName.PROFILE_DATASET)
def profile_dataset(self: ServiceTask, dataset_id: str) -> dict[str, Any]:
    """Profile the data set and record the outcome; raises
    :class:`~mlservice.store.dataset_files.ProfilingFailed` on a bad file.

    A data set deleted before or while it is profiled leaves nothing behind.
    """
    ctx = self.ctx
    datasets = ctx.datasets
    try:
        try:
            record = datasets.finish_profiling(dataset_id)
        except SoftTimeLimitExceeded:
            limit = ctx.settings.service.task_time_limit_seconds
            why = f"profiling was stopped: over [service] task_time_limit_seconds = {limit}"
            record = datasets.fail(dataset_id, why)
        except NotFound:
            raise
        except Exception:  # a bug, not the file: settle the record, keep the traceback
            datasets.fail(dataset_id, INTERNAL_ERROR)
            raise
    except NotFound:
        datasets.discard(dataset_id)
        return {"dataset_id": dataset_id, "status": "deleted"}
    return profiling_outcome(record)
