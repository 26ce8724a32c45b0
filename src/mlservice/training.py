"""Fitting a model: preprocessing plus estimator as one pipeline, and its metrics.

The preprocessing is fitted on the training split only: median imputation
and standard scaling for numeric columns, most-frequent imputation and a
one-hot encoder that ignores categories never seen in training for the
others. Classification targets are label-encoded and decoded on prediction,
so string labels come back as strings.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn import datasets, metrics
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder, OneHotEncoder, StandardScaler

from . import compiled
from .bundles import ModelBundle, library_versions
from .config import DefaultModelSettings
from .estimators import CLASSIFICATION, make_estimator, task_of

#: progress(fraction 0..1, human text)
Progress = Callable[[float, str], None]

_LOADERS = {
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
}

TARGET_COLUMN = "target"


@dataclass
class FittedModel:
    """A freshly fitted bundle and the held-out rows it was scored on.

    The held-out rows are what :func:`compile_onnx` checks the ONNX graph
    against; they are not part of the bundle.
    """

    bundle: ModelBundle
    held_out: pd.DataFrame


def _no_progress(fraction: float, message: str) -> None:
    """The default progress reporter: nobody is listening."""


def load_bundled_dataset(name: str) -> pd.DataFrame:
    """A data set shipped with scikit-learn, its target as the class names."""
    bunch = _LOADERS[name](as_frame=True)
    frame = bunch.frame.copy()
    frame[TARGET_COLUMN] = np.asarray(bunch.target_names)[bunch.target.to_numpy()]
    return frame


def is_numeric(series: pd.Series) -> bool:
    """Numbers are scaled; everything else (text, booleans, categories) is one-hot encoded."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def input_schema(frame: pd.DataFrame, features: Sequence[str]) -> list[dict[str, Any]]:
    """Column names, types and (for text columns) the categories seen in training."""
    schema = []
    for name in features:
        column = frame[name]
        if is_numeric(column):
            schema.append({"name": name, "type": "number"})
        else:
            categories = sorted(str(value) for value in column.dropna().unique())
            schema.append({"name": name, "type": "string", "categories": categories})
    return schema


def build_pipeline(schema: list[dict[str, Any]], estimator: Any) -> Pipeline:
    """Imputation, encoding and scaling per column type, then the estimator."""
    numeric = [column["name"] for column in schema if column["type"] == "number"]
    text = [column["name"] for column in schema if column["type"] == "string"]
    transformers = []
    if numeric:
        transformers.append(("numeric", Pipeline([
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
        ]), numeric))
    if text:
        transformers.append(("categorical", Pipeline([
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]), text))
    preprocess = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    return Pipeline([("preprocess", preprocess), ("estimator", estimator)])


def as_model_input(frame: pd.DataFrame, schema: list[dict[str, Any]]) -> pd.DataFrame:
    """Columns in schema order, text columns as Python strings (missing as NaN)."""
    columns = {}
    for column in schema:
        values = frame[column["name"]]
        if column["type"] == "number":
            columns[column["name"]] = pd.to_numeric(values).astype("float64")
        else:
            text = values.astype(object)
            columns[column["name"]] = text.where(text.isna(), text.astype(str)).astype(object)
    return pd.DataFrame(columns, index=frame.index)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None,
                           classes: list[Any]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro F1, ROC AUC where defined, confusion matrix."""
    labels = list(range(len(classes)))
    result: dict[str, Any] = {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(metrics.balanced_accuracy_score(y_true, y_pred)),
        "f1_macro": float(metrics.f1_score(y_true, y_pred, average="macro", labels=labels,
                                           zero_division=0)),
        "confusion_matrix": {
            "labels": classes,
            "matrix": metrics.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        },
    }
    if proba is not None and len(np.unique(y_true)) == len(classes) >= 2:
        if len(classes) == 2:
            result["roc_auc"] = float(metrics.roc_auc_score(y_true, proba[:, 1]))
        else:
            result["roc_auc"] = float(metrics.roc_auc_score(y_true, proba, multi_class="ovr"))
    return result


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """R², RMSE and MAE."""
    return {
        "r2": float(metrics.r2_score(y_true, y_pred)),
        "rmse": float(np.sqrt(metrics.mean_squared_error(y_true, y_pred))),
        "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
    }


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
    progress: Progress = _no_progress,
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
    classes: list[Any] | None = None
    if task == CLASSIFICATION:
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
        x, y, test_size=test_size, random_state=random_state, stratify=stratify)
    pipeline = build_pipeline(schema, estimator)
    cv_scores = None
    if cv:
        progress(0.15, f"{cv}-fold cross-validation")
        cv_scores = cross_val_score(pipeline, x_train, y_train, cv=cv)
    progress(0.2, f"fitting {estimator_name} on {len(x_train)} rows")
    pipeline.fit(x_train, y_train)
    progress(0.8, f"scoring on {len(x_test)} held-out rows")
    y_pred = pipeline.predict(x_test)
    if task == CLASSIFICATION:
        proba = pipeline.predict_proba(x_test) if hasattr(pipeline, "predict_proba") else None
        scores = classification_metrics(y_test, y_pred, proba, classes)
    else:
        scores = regression_metrics(y_test, y_pred)
    scores.update({"train_rows": int(len(x_train)), "test_rows": int(len(x_test))})
    if cv_scores is not None:
        scores["cv"] = {"folds": cv, "scoring": "accuracy" if task == CLASSIFICATION else "r2",
                        "scores": [float(v) for v in cv_scores],
                        "mean": float(np.mean(cv_scores)), "std": float(np.std(cv_scores))}
    progress(0.95, "packaging the model")
    bundle = ModelBundle(
        pipeline=pipeline,
        task=task,
        estimator=estimator_name,
        params=dict(params),
        schema=schema,
        target=target,
        classes=classes,
        metrics=scores,
        versions=library_versions(),
        trained_at=time.time(),
        training_seconds=round(time.perf_counter() - started, 3),
        engine_reason="not compiled yet",
    )
    return FittedModel(bundle, x_test)


def compile_onnx(fitted: FittedModel) -> ModelBundle:
    """A copy of the bundle with its ONNX graph, if it converts and agrees on the held-out rows.

    The bundle's ``engine`` and ``engine_reason`` say which engine will serve it and why.
    """
    bundle = fitted.bundle
    engine = compiled.compile_pipeline(bundle.pipeline, bundle.schema, bundle.task,
                                       fitted.held_out)
    return dataclasses.replace(bundle, onnx=engine.onnx, engine=engine.name,
                               engine_reason=engine.reason, onnx_max_rows=engine.max_rows)


def train_default_model(settings: DefaultModelSettings, progress: Progress = _no_progress
                        ) -> FittedModel:
    """The model ``/resource/init`` trains, as configured in ``[default_model]``."""
    progress(0.05, f"loading the {settings.dataset} data set")
    frame = load_bundled_dataset(settings.dataset)
    return train(frame, TARGET_COLUMN, settings.estimator, settings.params,
                 test_size=settings.test_size, random_state=settings.random_state,
                 progress=progress)
