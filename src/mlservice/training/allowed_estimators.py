"""The estimators users may train, and validation of their parameters.

An allowlist, not "anything importable": each entry is a class path and the
task it solves. Parameters are checked with scikit-learn's own parameter
validation, so errors name the parameter and the allowed values. XGBoost and
LightGBM (their scikit-learn wrappers) take a curated parameter set with real
defaults, declared in :mod:`.boosting_params`.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Mapping
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

from ..config import LimitsSettings
from ..errors import BadRequest, Invalid
from ..store.bundles import Task
from . import boosting_params

#: name -> (module, task). Estimators needing non-negative input (e.g.
#: MultinomialNB) are left out: inputs are standard-scaled.
ESTIMATORS: dict[str, tuple[str, Task]] = {
    "LogisticRegression": ("sklearn.linear_model", Task.CLASSIFICATION),
    "RidgeClassifier": ("sklearn.linear_model", Task.CLASSIFICATION),
    "SGDClassifier": ("sklearn.linear_model", Task.CLASSIFICATION),
    "Perceptron": ("sklearn.linear_model", Task.CLASSIFICATION),
    "DecisionTreeClassifier": ("sklearn.tree", Task.CLASSIFICATION),
    "ExtraTreeClassifier": ("sklearn.tree", Task.CLASSIFICATION),
    "RandomForestClassifier": ("sklearn.ensemble", Task.CLASSIFICATION),
    "ExtraTreesClassifier": ("sklearn.ensemble", Task.CLASSIFICATION),
    "GradientBoostingClassifier": ("sklearn.ensemble", Task.CLASSIFICATION),
    "HistGradientBoostingClassifier": ("sklearn.ensemble", Task.CLASSIFICATION),
    "AdaBoostClassifier": ("sklearn.ensemble", Task.CLASSIFICATION),
    "BaggingClassifier": ("sklearn.ensemble", Task.CLASSIFICATION),
    "SVC": ("sklearn.svm", Task.CLASSIFICATION),
    "NuSVC": ("sklearn.svm", Task.CLASSIFICATION),
    "LinearSVC": ("sklearn.svm", Task.CLASSIFICATION),
    "KNeighborsClassifier": ("sklearn.neighbors", Task.CLASSIFICATION),
    "GaussianNB": ("sklearn.naive_bayes", Task.CLASSIFICATION),
    "BernoulliNB": ("sklearn.naive_bayes", Task.CLASSIFICATION),
    "LinearDiscriminantAnalysis": ("sklearn.discriminant_analysis", Task.CLASSIFICATION),
    "QuadraticDiscriminantAnalysis": ("sklearn.discriminant_analysis", Task.CLASSIFICATION),
    "MLPClassifier": ("sklearn.neural_network", Task.CLASSIFICATION),
    "XGBClassifier": ("xgboost", Task.CLASSIFICATION),
    "LGBMClassifier": ("lightgbm", Task.CLASSIFICATION),
    "LinearRegression": ("sklearn.linear_model", Task.REGRESSION),
    "Ridge": ("sklearn.linear_model", Task.REGRESSION),
    "Lasso": ("sklearn.linear_model", Task.REGRESSION),
    "ElasticNet": ("sklearn.linear_model", Task.REGRESSION),
    "BayesianRidge": ("sklearn.linear_model", Task.REGRESSION),
    "HuberRegressor": ("sklearn.linear_model", Task.REGRESSION),
    "SGDRegressor": ("sklearn.linear_model", Task.REGRESSION),
    "DecisionTreeRegressor": ("sklearn.tree", Task.REGRESSION),
    "ExtraTreeRegressor": ("sklearn.tree", Task.REGRESSION),
    "RandomForestRegressor": ("sklearn.ensemble", Task.REGRESSION),
    "ExtraTreesRegressor": ("sklearn.ensemble", Task.REGRESSION),
    "GradientBoostingRegressor": ("sklearn.ensemble", Task.REGRESSION),
    "HistGradientBoostingRegressor": ("sklearn.ensemble", Task.REGRESSION),
    "AdaBoostRegressor": ("sklearn.ensemble", Task.REGRESSION),
    "BaggingRegressor": ("sklearn.ensemble", Task.REGRESSION),
    "SVR": ("sklearn.svm", Task.REGRESSION),
    "NuSVR": ("sklearn.svm", Task.REGRESSION),
    "LinearSVR": ("sklearn.svm", Task.REGRESSION),
    "KNeighborsRegressor": ("sklearn.neighbors", Task.REGRESSION),
    "MLPRegressor": ("sklearn.neural_network", Task.REGRESSION),
    "XGBRegressor": ("xgboost", Task.REGRESSION),
    "LGBMRegressor": ("lightgbm", Task.REGRESSION),
}

#: classifier -> the regressor to suggest when its target turns out to be continuous.
REGRESSOR_COUNTERPARTS: dict[str, str] = {
    "LogisticRegression": "Ridge",
    "RidgeClassifier": "Ridge",
    "SGDClassifier": "SGDRegressor",
    "Perceptron": "SGDRegressor",
    "DecisionTreeClassifier": "DecisionTreeRegressor",
    "ExtraTreeClassifier": "ExtraTreeRegressor",
    "RandomForestClassifier": "RandomForestRegressor",
    "ExtraTreesClassifier": "ExtraTreesRegressor",
    "GradientBoostingClassifier": "GradientBoostingRegressor",
    "HistGradientBoostingClassifier": "HistGradientBoostingRegressor",
    "AdaBoostClassifier": "AdaBoostRegressor",
    "BaggingClassifier": "BaggingRegressor",
    "SVC": "SVR",
    "NuSVC": "NuSVR",
    "LinearSVC": "LinearSVR",
    "KNeighborsClassifier": "KNeighborsRegressor",
    "GaussianNB": "BayesianRidge",
    "BernoulliNB": "BayesianRidge",
    "LinearDiscriminantAnalysis": "LinearRegression",
    "QuadraticDiscriminantAnalysis": "HistGradientBoostingRegressor",
    "MLPClassifier": "MLPRegressor",
    "XGBClassifier": "XGBRegressor",
    "LGBMClassifier": "LGBMRegressor",
}
#: The suggestion for a classifier missing from REGRESSOR_COUNTERPARTS.
DEFAULT_REGRESSOR = "HistGradientBoostingRegressor"


class EstimatorError(Invalid):
    """An unknown estimator or a bad parameter; the message names it."""


def estimator_class(name: str) -> type[BaseEstimator]:
    """The class behind an allowlisted name."""
    if name not in ESTIMATORS:
        raise EstimatorError(
            f"unknown estimator {name!r}; see GET /resource/estimators for the supported ones"
        )
    module, _task = ESTIMATORS[name]
    cls: type[BaseEstimator] = getattr(importlib.import_module(module), name)
    return cls


def task_of(name: str) -> Task:
    """``classification`` or ``regression``."""
    estimator_class(name)
    return ESTIMATORS[name][1]


def estimator_libraries(name: str) -> list[str]:
    """The packages beyond scikit-learn a model of ``name`` needs to load (``xgboost``)."""
    module = ESTIMATORS[name][0] if name in ESTIMATORS else "sklearn"
    root = module.split(".")[0]
    return [] if root == "sklearn" else [root]


def regressor_for(classifier: str) -> str:
    """The regressor closest to ``classifier`` (e.g. RandomForestClassifier ->
    RandomForestRegressor), to suggest for a continuous target."""
    return REGRESSOR_COUNTERPARTS.get(classifier, DEFAULT_REGRESSOR)


def make_estimator(name: str, params: Mapping[str, Any]) -> BaseEstimator:
    """An unfitted estimator with ``params``, validated the way scikit-learn validates them."""
    cls = estimator_class(name)
    if not isinstance(params, Mapping):
        raise EstimatorError("params must be a JSON object of parameter names to values")
    known = _known_params(name, cls)
    for param in params:
        if param not in known:
            raise EstimatorError(
                f"unknown parameter {param!r} for {name}; known: {', '.join(sorted(known))}"
            )
    if name in boosting_params.SPECS:
        try:
            validate_parameter_constraints(
                boosting_params.constraints(name), dict(params), caller_name=name
            )
        except InvalidParameterError as exc:
            raise EstimatorError(str(exc)) from None
        return cls(**{**boosting_params.defaults(name), **params})
    estimator = cls(**params)
    try:
        estimator._validate_params()  # scikit-learn's own checks, as fit() would run them
    except InvalidParameterError as exc:
        raise EstimatorError(str(exc)) from None
    return estimator


def _known_params(name: str, cls: type[BaseEstimator]) -> dict[str, Any]:
    """The parameters a request may set for ``name``, with their defaults."""
    if name in boosting_params.SPECS:
        return boosting_params.defaults(name)
    params: dict[str, Any] = cls().get_params(deep=False)
    return params


def check_probabilities(name: str, params: Mapping[str, Any]) -> None:
    """Refuse (400) probabilities a model cannot give, told from its estimator and
    parameters alone (nothing is loaded): a regressor's, or a classifier's without
    ``predict_proba`` (an ``SVC`` without ``probability=True``, say).

    An estimator this service does not list (an uploaded bundle's) is not judged here:
    the job that loads it refuses in its own words.
    """
    if name not in ESTIMATORS:
        return
    if task_of(name) != Task.CLASSIFICATION:
        raise BadRequest(f"{name} is a regressor: it gives no probabilities; ask without them")
    if not hasattr(make_estimator(name, params), "predict_proba"):
        raise BadRequest(f"{name} does not give probabilities; ask without them")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, e.g. a container's cpuset)."""
    return len(os.sched_getaffinity(0))


def check_limits(name: str, params: Mapping[str, Any], limits: LimitsSettings) -> None:
    """Refuse parameters that would ask for unbounded work (422 naming the limit)."""
    bounded = {
        "n_estimators": (limits.max_n_estimators, "max_n_estimators"),
        "max_iter": (limits.max_iter, "max_iter"),
    }
    for param, (top, setting) in bounded.items():
        value = params.get(param)
        if isinstance(value, int) and not isinstance(value, bool) and value > top:
            raise EstimatorError(f"{name} {param}={value} is more than {top} ([limits] {setting})")
    n_jobs = params.get("n_jobs")
    cpus = usable_cpus()
    if isinstance(n_jobs, int) and not isinstance(n_jobs, bool) and not -cpus <= n_jobs <= cpus:
        raise EstimatorError(
            f"{name} n_jobs={n_jobs} asks for more than the {cpus} CPUs the service can use; "
            f"use 1 to {cpus}, or -1 for all of them"
        )


def _json_default(value: Any) -> Any:
    """A default value as JSON can carry it (objects become their repr)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return repr(value)


def _param_types(name: str, cls: type[BaseEstimator]) -> dict[str, str]:
    """Each parameter's JSON types (``integer|null``), from its constraints."""
    if name in boosting_params.SPECS:
        rules = boosting_params.constraints(name)
    else:
        rules = getattr(cls, "_parameter_constraints", {})
    return {
        param: boosting_params.json_type(rules[param]) if param in rules else "object"
        for param in _known_params(name, cls)
    }


def describe_all() -> list[dict[str, Any]]:
    """Every supported estimator with its task, parameter defaults and parameter types."""
    described = []
    for name, (module, task) in ESTIMATORS.items():
        cls = estimator_class(name)
        params = {param: _json_default(value) for param, value in _known_params(name, cls).items()}
        described.append(
            {
                "name": name,
                "task": task,
                "module": module,
                "params": params,
                "param_types": _param_types(name, cls),
            }
        )
    return described
