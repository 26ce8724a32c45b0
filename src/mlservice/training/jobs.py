"""Training a requested model end to end, in a Celery worker: fit, publish, compile.

The Celery tasks (:mod:`.celery_tasks`) are shells around these functions: they
know the task's progress and callbacks, these know the stores. A model is
``ready`` (served by scikit-learn) as soon as it is fitted; compiling to ONNX
then publishes a faster version of the same model.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..store import dataset_files
from ..store.model_lifecycle import Models
from ..store.records import DatasetRecord, ModelRecord, ModelStatus
from . import fitting, onnx_conversion
from .fitting import FittedModel, Progress


def fit_model(
    models: Models,
    model_id: str,
    dataset: DatasetRecord,
    dataset_path: Path,
    progress: Progress,
    compile_onnx: bool,
) -> tuple[ModelRecord, FittedModel]:
    """Fit the model, store its bundle and publish it: ``ready``.

    It is served by scikit-learn until :func:`compile_model` (run next when
    ``compile_onnx``) publishes the compiled version.
    """
    record = models.catalog.update(model_id, status=ModelStatus.TRAINING, started_at=time.time())
    progress(0.02, "loading the data set")
    frame = dataset_files.load_frame(
        dataset_path,
        dataset["format"],
        dataset["string_columns"],
        delimiter=dataset_files.delimiter_of(dataset),
    )
    fitted = fitting.train(
        frame,
        record["target"],
        record["estimator"],
        record["params"],
        features=record["features"],
        test_size=record["test_size"],
        cv=record["cv"],
        progress=progress,
    )
    if not compile_onnx:
        fitted.bundle.engine_reason = "not compiled: ONNX compilation is off for this model"
    else:
        fitted.bundle.engine_reason = "compiling to ONNX; scikit-learn serves meanwhile"
    record = models.store_bundle(
        model_id, fitted.bundle, status=ModelStatus.READY, finished_at=time.time()
    )
    return record, fitted


def compile_model(models: Models, model_id: str, fitted: FittedModel) -> ModelRecord:
    """Convert to ONNX and, if it agrees with scikit-learn, publish it as a new version.

    The model stays ``ready`` throughout; its ``engine`` says which engine serves and why.
    """
    bundle = onnx_conversion.compile_onnx(fitted)
    if bundle.onnx is None:  # nothing new to serve: only the reason changes
        return models.catalog.update(model_id, engine=bundle.engine_info())
    return models.store_bundle(model_id, bundle)
