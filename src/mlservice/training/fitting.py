"""Fitting a model: split the rows, fit the pipeline, score it, package the bundle.

The preprocessing (:mod:`.pipeline`) is fitted on the training split only.
Classification targets are label-encoded and decoded on prediction, so
string labels come back as strings. The default model (``GET
/resource/init``) is the same fit on a data set shipped with scikit-learn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import datasets
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.preprocessing import LabelEncoder

from ..config import DefaultModelSettings
from ..monitoring.feature_profile import training_profile
from ..store.bundles import ModelBundle, Task, library_versions
from .allowed_estimators import make_estimator, task_of
from .metrics import classification_metrics, regression_metrics
from .pipeline import as_model_input, build_pipeline, input_schema

#: How far a training run is: progress(fraction 0..1, human text).
TrainingProgress = Callable[[float, str], None]

_LOADERS = {
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
}

TARGET_COLUMN = "target"


@dataclass
class FittedModel:
    """A freshly fitted bundle and the held-out rows it was scored on.

    The held-out rows are what :func:`mlservice.training.onnx_conversion.compile_onnx`
    checks the ONNX graph against; they are not part of the bundle.
    """

    bundle: ModelBundle
    held_out: pd.DataFrame


def no_progress(fraction: float, message: str) -> None:
    """The default progress reporter: nobody is listening."""


def load_bundled_dataset(name: str) -> pd.DataFrame:
    """A data set shipped with scikit-learn, its target as the class names."""
    bunch = _LOADERS[name](as_frame=True)
    frame = bunch.frame.copy()
    frame[TARGET_COLUMN] = np.asarray(bunch.target_names)[bunch.target.to_numpy()]
    return frame


def _python_value(value: Any) -> Any:
    """A numpy scalar as the plain Python value JSON can carry."""
    return value.item() if isinstance(value, np.generic) else value


def train(
    frame: pd.DataFrame,
    target: str,
    estimator_name: str,
    params: Mapping[str, Any],
    features: Sequence[str] | None = None,
    test_size: float = 0.25,
    random_state: int = 0,
    cv: int | None = None,
    progress: TrainingProgress = no_progress,
) -> FittedModel:
    """Split, fit the pipeline on the training part, score it on the held-out part.

    With ``cv``, k-fold cross-validation on the training part is reported too.
    """
    started = time.perf_counter()
    task = task_of(estimator_name)
    estimator = make_estimator(estimator_name, params)
    features = list(features) if features else [c for c in frame.columns if c != target]
    frame = frame[frame[target].notna()]
    schema = input_schema(frame, features)
    x = as_model_input(frame, schema)
    classes: list[Any] = []  # the label encoding, for classifiers
    if task == Task.CLASSIFICATION:
        encoder = LabelEncoder()
        y = encoder.fit_transform(frame[target].to_numpy())
        classes = [_python_value(value) for value in encoder.classes_]
        counts = np.bincount(y)
        stratify = y if counts.min() >= 2 else None
    else:
        y = pd.to_numeric(frame[target]).to_numpy(dtype="float64")
        stratify = None
    progress(0.1, "splitting the data")
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=random_state, stratify=stratify
    )
    pipeline = build_pipeline(schema, estimator)
    cv_scores = None
    if cv:
        progress(0.15, f"{cv}-fold cross-validation")
        cv_scores = cross_val_score(pipeline, x_train, y_train, cv=cv)
    progress(0.2, f"fitting {estimator_name} on {len(x_train)} rows")
    pipeline.fit(x_train, y_train)
    progress(0.8, f"scoring on {len(x_test)} held-out rows")
    y_pred = pipeline.predict(x_test)
    if task == Task.CLASSIFICATION:
        proba = pipeline.predict_proba(x_test) if hasattr(pipeline, "predict_proba") else None
        scores = classification_metrics(y_test, y_pred, proba, classes)
    else:
        scores = regression_metrics(y_test, y_pred)
    scores.update({"train_rows": int(len(x_train)), "test_rows": int(len(x_test))})
    if cv_scores is not None:
        scores["cv"] = {
            "folds": cv,
            "scoring": "accuracy" if task == Task.CLASSIFICATION else "r2",
            "scores": [float(v) for v in cv_scores],
            "mean": float(np.mean(cv_scores)),
            "std": float(np.std(cv_scores)),
        }
    progress(0.95, "packaging the model")
    bundle = ModelBundle(
        pipeline=pipeline,
        task=task,
        estimator=estimator_name,
        params=dict(params),
        schema=schema,
        target=target,
        classes=classes if task == Task.CLASSIFICATION else None,
        metrics=scores,
        versions=library_versions(),
        trained_at=time.time(),
        training_seconds=round(time.perf_counter() - started, 3),
        engine_reason="not compiled yet",
        training_profile=dict(training_profile(x_train, schema)),
    )
    return FittedModel(bundle, x_test)


def train_default_model(
    settings: DefaultModelSettings, progress: TrainingProgress = no_progress
) -> FittedModel:
    """The model ``/resource/init`` trains, as configured in ``[default_model]``."""
    progress(0.05, f"loading the {settings.dataset} data set")
    frame = load_bundled_dataset(settings.dataset)
    return train(
        frame,
        TARGET_COLUMN,
        settings.estimator,
        settings.params,
        test_size=settings.test_size,
        random_state=settings.random_state,
        progress=progress,
    )
