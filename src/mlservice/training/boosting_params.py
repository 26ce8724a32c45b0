"""XGBoost and LightGBM: the parameters users may set, their types, defaults and bounds.

Their scikit-learn wrappers accept dozens of keyword arguments, most ``None``
("the library's default"), and validate nothing until ``fit``, deep in C++.
So the service offers a curated set, each with its real default (so ``GET
/resource/estimators`` shows what a model is trained with) and a
scikit-learn-style constraint, checked by scikit-learn's own validator: a bad
value is refused before the request is accepted, with a message naming the
parameter and what it may be.

Two defaults differ from the libraries': ``n_jobs=1`` (a worker trains one
model per process; the libraries would take every core) and LightGBM's
``verbose=-1`` (its info lines would otherwise fill the worker's log).
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

from sklearn.utils._param_validation import Hidden, Interval, Options, StrOptions

#: A constraint list as scikit-learn's ``validate_parameter_constraints`` takes it.
Constraints = list[Any]

_N_JOBS: Constraints = [Interval(Integral, None, None, closed="neither"), None]
_SEED: Constraints = [Interval(Integral, 0, None, closed="left"), None]
_RATIO: Constraints = [Interval(Real, 0, 1, closed="right")]
_NON_NEGATIVE: Constraints = [Interval(Real, 0, None, closed="left")]

#: name -> parameter -> (default, constraints). Order: what users tune first.
_XGBOOST: dict[str, tuple[Any, Constraints]] = {
    "n_estimators": (100, [Interval(Integral, 1, None, closed="left")]),
    "max_depth": (6, [Interval(Integral, 0, None, closed="left")]),
    "learning_rate": (0.3, [Interval(Real, 0, None, closed="neither")]),
    "subsample": (1.0, _RATIO),
    "colsample_bytree": (1.0, _RATIO),
    "min_child_weight": (1.0, _NON_NEGATIVE),
    "gamma": (0.0, _NON_NEGATIVE),
    "reg_alpha": (0.0, _NON_NEGATIVE),
    "reg_lambda": (1.0, _NON_NEGATIVE),
    "max_bin": (256, [Interval(Integral, 2, None, closed="left")]),
    "tree_method": ("hist", [StrOptions({"hist", "approx", "exact"})]),
    "random_state": (0, _SEED),
    "n_jobs": (1, _N_JOBS),
}

_LIGHTGBM: dict[str, tuple[Any, Constraints]] = {
    "n_estimators": (100, [Interval(Integral, 1, None, closed="left")]),
    "num_leaves": (31, [Interval(Integral, 2, 131072, closed="both")]),
    "max_depth": (-1, [Interval(Integral, -1, None, closed="left")]),
    "learning_rate": (0.1, [Interval(Real, 0, None, closed="neither")]),
    "min_child_samples": (20, [Interval(Integral, 0, None, closed="left")]),
    "min_child_weight": (0.001, _NON_NEGATIVE),
    "subsample": (1.0, _RATIO),
    "subsample_freq": (0, [Interval(Integral, 0, None, closed="left")]),
    "colsample_bytree": (1.0, _RATIO),
    "reg_alpha": (0.0, _NON_NEGATIVE),
    "reg_lambda": (0.0, _NON_NEGATIVE),
    "min_split_gain": (0.0, _NON_NEGATIVE),
    "boosting_type": ("gbdt", [StrOptions({"gbdt", "dart", "rf"})]),
    "random_state": (0, _SEED),
    "n_jobs": (1, _N_JOBS),
    "verbose": (-1, [Interval(Integral, None, None, closed="neither")]),
}

SPECS: dict[str, dict[str, tuple[Any, Constraints]]] = {
    "XGBClassifier": _XGBOOST,
    "XGBRegressor": _XGBOOST,
    "LGBMClassifier": _LIGHTGBM,
    "LGBMRegressor": _LIGHTGBM,
}


def defaults(name: str) -> dict[str, Any]:
    """The parameters a ``name`` model is built with when the request sets none."""
    return {param: default for param, (default, _) in SPECS[name].items()}


def constraints(name: str) -> dict[str, Constraints]:
    """Each parameter's constraints, for scikit-learn's validator."""
    return {param: rule for param, (_, rule) in SPECS[name].items()}


def json_type(rules: Constraints) -> str:
    """The JSON types a parameter takes, from its scikit-learn constraints:
    ``integer``, ``number``, ``string``, ``boolean``, ``array``, ``object``,
    ``null``, joined with ``|`` when several are allowed (``integer|null``).
    Hidden (deprecated) options are not shown."""
    names: list[str] = []
    for rule in rules:
        for name in _json_names(rule):
            if name not in names:
                names.append(name)
    return "|".join(names)


def _json_names(rule: Any) -> list[str]:
    """The JSON type names one scikit-learn constraint admits."""
    if rule is None:
        return ["null"]
    if isinstance(rule, Hidden):
        return []
    if isinstance(rule, Interval):
        return ["integer" if rule.type is Integral else "number"]
    if isinstance(rule, (StrOptions, Options)) or rule is str:
        return ["string"]
    named = {
        "boolean": ["boolean"],
        "random_state": ["integer", "null"],
        "verbose": ["integer", "boolean"],
        "array-like": ["array"],
        Integral: ["integer"],
        Real: ["number"],
        bool: ["boolean"],
        list: ["array"],
    }
    if isinstance(rule, str) or isinstance(rule, type):
        return named.get(rule, ["object"])
    return ["object"]
