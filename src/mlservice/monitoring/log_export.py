"""A model's prediction log as a new data set, to be labelled and trained on.

Run by a Celery task (``POST /resource/models/<id>/prediction-log/export``):
the buffered rows are flushed first, then every file is written into one
Parquet data set owned by whoever asked, and profiled like an upload. Its
columns: the model's input columns, ``prediction`` (and ``probability_<class>``
where a request asked for them), ``model_id``, ``model_version``,
``predicted_at`` and ``request_id``. Train on it with ``features`` naming the
input columns (else the log's own columns count as features too).
"""

from __future__ import annotations

import time

from ..errors import JobFailed
from ..security import Identity
from ..store.dataset_files import FILENAMES, PARQUET_FORMAT, Datasets
from ..store.records import DatasetRecord
from .prediction_log import PredictionLog


class NothingLogged(JobFailed):
    """The model's log has no rows (the route checks first; this is a race with the bounds)."""


def export(
    log_store: PredictionLog,
    datasets: Datasets,
    model_id: str,
    output_id: str,
    owner: Identity,
    name: str | None = None,
) -> DatasetRecord:
    """Write the model's log into the new data set ``output_id``; its record. A delivery
    after one that finished answers the same record; :class:`NothingLogged` if no rows."""
    try:
        return datasets.catalog.get(output_id)
    except LookupError:
        pass
    started = time.perf_counter()
    filename = FILENAMES[PARQUET_FORMAT]
    with datasets.artifacts.writing(datasets.KIND, output_id, filename) as (handle, path):
        rows = log_store.export(model_id, handle)
        if rows == 0:
            raise NothingLogged(
                f"model {model_id!r} has no logged predictions: turn its log on "
                '(PATCH /resource/models/<id> {"log_predictions": true}, or the same on '
                "/resource/registry/<name> to log predictions by name) and predict first"
            )
    size = path.stat().st_size
    name = name or f"prediction log of model {model_id}"
    return datasets.register(output_id, PARQUET_FORMAT, owner, name, size, started)
