"""The scikit-learn estimators users may train, and validation of their parameters.

An allowlist, not "anything importable": each entry is a class path and the
task it solves. Parameters are checked with scikit-learn's own parameter
validation, so errors name the parameter and the allowed values.
"""

from __future__ import annotations

import importlib
import math
from typing import Any, Mapping

from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import InvalidParameterError

CLASSIFICATION = "classification"
REGRESSION = "regression"

#: name -> (module, task). Estimators needing non-negative input (e.g.
#: MultinomialNB) are left out: inputs are standard-scaled.
ESTIMATORS: dict[str, tuple[str, str]] = {
    "LogisticRegression": ("sklearn.linear_model", CLASSIFICATION),
    "RidgeClassifier": ("sklearn.linear_model", CLASSIFICATION),
    "SGDClassifier": ("sklearn.linear_model", CLASSIFICATION),
    "Perceptron": ("sklearn.linear_model", CLASSIFICATION),
    "DecisionTreeClassifier": ("sklearn.tree", CLASSIFICATION),
    "ExtraTreeClassifier": ("sklearn.tree", CLASSIFICATION),
    "RandomForestClassifier": ("sklearn.ensemble", CLASSIFICATION),
    "ExtraTreesClassifier": ("sklearn.ensemble", CLASSIFICATION),
    "GradientBoostingClassifier": ("sklearn.ensemble", CLASSIFICATION),
    "HistGradientBoostingClassifier": ("sklearn.ensemble", CLASSIFICATION),
    "AdaBoostClassifier": ("sklearn.ensemble", CLASSIFICATION),
    "BaggingClassifier": ("sklearn.ensemble", CLASSIFICATION),
    "SVC": ("sklearn.svm", CLASSIFICATION),
    "NuSVC": ("sklearn.svm", CLASSIFICATION),
    "LinearSVC": ("sklearn.svm", CLASSIFICATION),
    "KNeighborsClassifier": ("sklearn.neighbors", CLASSIFICATION),
    "GaussianNB": ("sklearn.naive_bayes", CLASSIFICATION),
    "BernoulliNB": ("sklearn.naive_bayes", CLASSIFICATION),
    "LinearDiscriminantAnalysis": ("sklearn.discriminant_analysis", CLASSIFICATION),
    "QuadraticDiscriminantAnalysis": ("sklearn.discriminant_analysis", CLASSIFICATION),
    "MLPClassifier": ("sklearn.neural_network", CLASSIFICATION),
    "LinearRegression": ("sklearn.linear_model", REGRESSION),
    "Ridge": ("sklearn.linear_model", REGRESSION),
    "Lasso": ("sklearn.linear_model", REGRESSION),
    "ElasticNet": ("sklearn.linear_model", REGRESSION),
    "BayesianRidge": ("sklearn.linear_model", REGRESSION),
    "HuberRegressor": ("sklearn.linear_model", REGRESSION),
    "SGDRegressor": ("sklearn.linear_model", REGRESSION),
    "DecisionTreeRegressor": ("sklearn.tree", REGRESSION),
    "ExtraTreeRegressor": ("sklearn.tree", REGRESSION),
    "RandomForestRegressor": ("sklearn.ensemble", REGRESSION),
    "ExtraTreesRegressor": ("sklearn.ensemble", REGRESSION),
    "GradientBoostingRegressor": ("sklearn.ensemble", REGRESSION),
    "HistGradientBoostingRegressor": ("sklearn.ensemble", REGRESSION),
    "AdaBoostRegressor": ("sklearn.ensemble", REGRESSION),
    "BaggingRegressor": ("sklearn.ensemble", REGRESSION),
    "SVR": ("sklearn.svm", REGRESSION),
    "NuSVR": ("sklearn.svm", REGRESSION),
    "LinearSVR": ("sklearn.svm", REGRESSION),
    "KNeighborsRegressor": ("sklearn.neighbors", REGRESSION),
    "MLPRegressor": ("sklearn.neural_network", REGRESSION),
}


class EstimatorError(ValueError):
    """An unknown estimator or a bad parameter; the message names it."""


def estimator_class(name: str) -> type[BaseEstimator]:
    """The class behind an allowlisted name."""
    if name not in ESTIMATORS:
        raise EstimatorError(
            f"unknown estimator {name!r}; see GET /resource/estimators for the supported ones"
        )
    module, _task = ESTIMATORS[name]
    return getattr(importlib.import_module(module), name)


def task_of(name: str) -> str:
    """``classification`` or ``regression``."""
    estimator_class(name)
    return ESTIMATORS[name][1]


def make_estimator(name: str, params: Mapping[str, Any]) -> BaseEstimator:
    """An unfitted estimator with ``params``, validated the way scikit-learn validates them."""
    cls = estimator_class(name)
    if not isinstance(params, Mapping):
        raise EstimatorError("params must be a JSON object of parameter names to values")
    known = cls().get_params(deep=False)
    for param in params:
        if param not in known:
            raise EstimatorError(
                f"unknown parameter {param!r} for {name}; known: {', '.join(sorted(known))}"
            )
    estimator = cls(**params)
    try:
        estimator._validate_params()  # scikit-learn's own checks, as fit() would run them
    except InvalidParameterError as exc:
        raise EstimatorError(str(exc)) from None
    return estimator


def _json_default(value: Any) -> Any:
    """A default value as JSON can carry it (objects become their repr)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return repr(value)


def describe_all() -> list[dict[str, Any]]:
    """Every supported estimator with its task and parameter defaults."""
    described = []
    for name, (module, task) in ESTIMATORS.items():
        defaults = estimator_class(name)().get_params(deep=False)
        params = {param: _json_default(value) for param, value in defaults.items()}
        described.append({"name": name, "task": task, "module": module, "params": params})
    return described
