"""Fitting a model: split the rows, fit the pipeline, score it, package the bundle.

The preprocessing (:mod:`.pipeline`) is fitted on the training split only.
Classification targets are label-encoded and decoded on prediction, so
string labels come back as strings. The default model (``GET
/resource/init``) is the same fit on a data set shipped with scikit-learn.

What the user should know of a fit goes into the bundle's ``warnings``: rows
left out for a missing target, columns left out (and why), categories
grouped, every Python warning raised while fitting (a ConvergenceWarning, a
class too rare to split), and an imbalanced target's class weights. The split
is stratified whenever every class has two rows or more; a classifier that
takes ``class_weight`` gets ``"balanced"`` when the largest class has at least
:data:`IMBALANCE_RATIO` times the rows of the smallest (unless the request sets it).
Metrics are the held-out rows'; ``metrics["training"]`` has the same on the
rows the model was fitted on, to compare (a large gap is overfitting).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import datasets
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.preprocessing import LabelEncoder

from ..config import DefaultModelSettings
from ..errors import Invalid
from ..monitoring.feature_profile import training_profile
from ..store.bundles import ModelBundle, Task, TrainingWarning, library_versions
from .allowed_estimators import estimator_libraries, make_estimator, task_of
from .metrics import classification_metrics, regression_metrics
from .pipeline import as_model_input, build_pipeline, plan_columns

#: How far a training run is: progress(fraction 0..1, human text).
TrainingProgress = Callable[[float, str], None]

_LOADERS = {
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
}

TARGET_COLUMN = "target"
#: Largest class / smallest class at which a classifier gets ``class_weight="balanced"``.
IMBALANCE_RATIO = 3.0


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
    roles: Mapping[str, str] | None = None,
    reasons: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> FittedModel:
    """Split, fit the pipeline on the training part, score it on the held-out part.

    With ``cv``, k-fold cross-validation on the training part is reported too.
    ``roles`` (the profile's, with ``reasons``) and ``overrides`` (the request's
    ``"columns"``) say how each feature goes in (:func:`.pipeline.plan_columns`).
    """
    started = time.perf_counter()
    task = task_of(estimator_name)
    params = dict(params)
    features = list(features) if features else [c for c in frame.columns if c != target]
    notes: list[TrainingWarning] = []
    dropped = int(frame[target].isna().sum())
    if dropped:
        notes.append(
            {
                "kind": "rows_dropped",
                "message": (
                    f"{dropped} of {len(frame)} rows have no value in the target {target!r}: "
                    f"they are left out, and the model is trained and tested on the other "
                    f"{len(frame) - dropped}"
                ),
                "column": target,
            }
        )
    frame = frame[frame[target].notna()]
    plan = plan_columns(frame, features, roles, reasons, overrides)
    notes.extend(plan.warnings)
    if not plan.schema:
        raise Invalid(
            "every feature column is left out (" + "; ".join(n["message"] for n in notes) + ")"
        )
    schema = plan.schema
    x = as_model_input(frame, schema)
    classes: list[Any] = []  # the label encoding, for classifiers
    if task == Task.CLASSIFICATION:
        encoder = LabelEncoder()
        y = encoder.fit_transform(frame[target].to_numpy())
        classes = [_python_value(value) for value in encoder.classes_]
        counts = np.bincount(y)
        stratify = y if counts.min() >= 2 else None
        notes.extend(_class_notes(classes, counts, estimator_name, params, stratify is not None))
    else:
        y = pd.to_numeric(frame[target]).to_numpy(dtype="float64")
        stratify = None
    estimator = make_estimator(estimator_name, params)
    progress(0.1, "splitting the data")
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=random_state, stratify=stratify
    )
    pipeline = build_pipeline(schema, estimator)
    cv_scores = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if cv:
            progress(0.15, f"{cv}-fold cross-validation")
            cv_scores = cross_val_score(pipeline, x_train, y_train, cv=cv)
        progress(0.2, f"fitting {estimator_name} on {len(x_train)} rows")
        pipeline.fit(x_train, y_train)
        progress(0.8, f"scoring on {len(x_test)} held-out rows")
        scores = _scores(pipeline, task, x_test, y_test, classes)
        scores["training"] = _scores(pipeline, task, x_train, y_train, classes)
        scores["training"].pop("confusion_matrix", None)
    notes.extend(_python_warnings(caught))
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
        params=params,
        schema=schema,
        target=target,
        classes=classes if task == Task.CLASSIFICATION else None,
        metrics=scores,
        versions=library_versions(estimator_libraries(estimator_name)),
        trained_at=time.time(),
        training_seconds=round(time.perf_counter() - started, 3),
        engine_reason="not compiled yet",
        warnings=notes,
        training_profile=dict(training_profile(x_train, schema)),
    )
    return FittedModel(bundle, x_test)


def _scores(
    pipeline: Any, task: str, x: pd.DataFrame, y: np.ndarray, classes: list[Any]
) -> dict[str, Any]:
    """The metrics of the fitted pipeline on rows ``x`` with targets ``y``."""
    y_pred = pipeline.predict(x)
    if task == Task.CLASSIFICATION:
        proba = pipeline.predict_proba(x) if hasattr(pipeline, "predict_proba") else None
        return classification_metrics(y, y_pred, proba, classes)
    return regression_metrics(y, y_pred)


def _class_notes(
    classes: list[Any],
    counts: np.ndarray,
    estimator_name: str,
    params: dict[str, Any],
    stratified: bool,
) -> list[TrainingWarning]:
    """Warnings on the target's classes: too rare to stratify, or imbalanced (and then
    ``class_weight="balanced"`` set in ``params`` where the estimator takes it)."""
    notes: list[TrainingWarning] = []
    if not stratified:
        rare = [str(label) for label, count in zip(classes, counts, strict=True) if count < 2]
        notes.append(
            {
                "kind": "class_imbalance",
                "message": (
                    f"class(es) {', '.join(map(repr, rare))} have a single row: the split "
                    "cannot be stratified, and the held-out rows may lack them"
                ),
            }
        )
    ratio = float(counts.max()) / float(max(1, counts.min()))
    if ratio < IMBALANCE_RATIO:
        return notes
    sizes = ", ".join(f"{label!r}: {count}" for label, count in zip(classes, counts, strict=True))
    message = (
        f"the classes are imbalanced ({sizes}); the split is stratified"
        if stratified
        else (f"the classes are imbalanced ({sizes})")
    )
    takes_weights = "class_weight" in make_estimator(estimator_name, {}).get_params(deep=False)
    if takes_weights and "class_weight" not in params:
        params["class_weight"] = "balanced"
        message += (
            ', and class_weight is set to "balanced" (rows weighted inversely to their class\'s '
            'size); send "params": {"class_weight": null} to turn it off'
        )
    elif not takes_weights:
        message += f"; {estimator_name} takes no class_weight, so the classes are not weighted"
    notes.append({"kind": "class_imbalance", "message": message})
    return notes


#: Warnings for developers, not about the model: deprecations (in any library), and
#: anything the worker's own libraries say meanwhile (warnings are caught process-wide).
_NOT_THE_USERS = (DeprecationWarning, PendingDeprecationWarning)
_WORKER_LIBRARIES = ("redis", "celery", "kombu", "billiard", "amqp")


def _python_warnings(caught: list[warnings.WarningMessage]) -> list[TrainingWarning]:
    """The Python warnings raised while fitting and scoring, each once, in the user's view
    (not deprecations, nor the worker's own libraries' warnings)."""
    seen: dict[tuple[str, str], TrainingWarning] = {}
    for item in caught:
        if issubclass(item.category, _NOT_THE_USERS):
            continue
        parts = item.filename.replace("\\", "/").split("/")
        if any(library in parts for library in _WORKER_LIBRARIES):
            continue
        kind = item.category.__name__
        message = str(item.message).strip().splitlines()[0][:500]
        seen.setdefault((kind, message), {"kind": kind, "message": message})
    return list(seen.values())


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
