"""How a fitted model scored on its held-out rows."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, classes: list[Any]
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro F1, ROC AUC where defined, confusion matrix."""
    labels = list(range(len(classes)))
    result: dict[str, Any] = {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(metrics.balanced_accuracy_score(y_true, y_pred)),
        "f1_macro": float(
            metrics.f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)
        ),
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
