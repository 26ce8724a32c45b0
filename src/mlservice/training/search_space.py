"""A search space: for each parameter, the values to try or a distribution to draw from.

``"space": {"C": [0.1, 1, 10], "max_iter": {"type": "int", "low": 100, "high":
1000, "log": true}}``: a list is the values to try (any JSON values the
estimator takes), a distribution is ``int`` or ``float`` between ``low`` and
``high`` (both included), drawn uniformly or, with ``log``, uniformly on a
log scale. Every name and value is checked against the estimator before
anything runs, with scikit-learn's own parameter validation (a list's every
value, a distribution's both ends) and the service's limits: a refusal (400)
names the estimator and the parameter.

AutoML searches use :data:`DEFAULT_SPACES`, a curated space for each
estimator of a curated set per task (:data:`DEFAULT_ESTIMATORS`). A grid
search needs values: a distribution gives it :data:`GRID_POINTS` (its two ends
and their middle, geometric on a log scale).

Nothing here draws or plans: :mod:`.search_plans` does, in the worker.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from ..config import LimitsSettings
from ..errors import BadRequest
from ..store.bundles import Task
from . import allowed_estimators
from .allowed_estimators import EstimatorError

#: How many values a distribution gives a grid search: its ends and their middle.
GRID_POINTS = 3


class Distribution(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``{"type": "int"|"float", "low", "high", "log"?}``: the contract's ``SearchDistribution``."""

    type: Literal["int", "float"]
    low: float
    high: float
    log: bool = False


#: A parameter's place in a space: the values to try, or a distribution.
Spec = list[Any] | Distribution
#: estimator -> parameter -> what to try.
Spaces = dict[str, dict[str, Spec]]


def _uniform(kind: Literal["int", "float"], low: float, high: float, log: bool = False) -> Spec:
    return Distribution(type=kind, low=float(low), high=float(high), log=log)


def _forest() -> dict[str, Spec]:
    return {
        "n_estimators": _uniform("int", 50, 300),
        "max_depth": [None, 8, 16],
        "min_samples_leaf": _uniform("int", 1, 8),
    }


def _boosting() -> dict[str, Spec]:
    return {
        "learning_rate": _uniform("float", 0.01, 0.3, log=True),
        "max_iter": _uniform("int", 50, 300),
        "max_leaf_nodes": _uniform("int", 15, 63),
    }


def _neighbours() -> dict[str, Spec]:
    return {"n_neighbors": _uniform("int", 3, 30), "weights": ["uniform", "distance"]}


#: AutoML's estimators when the request names none, per task: a linear model, two
#: forests, histogram gradient boosting and k-neighbours.
DEFAULT_ESTIMATORS: dict[Task, tuple[str, ...]] = {
    Task.CLASSIFICATION: (
        "LogisticRegression",
        "RandomForestClassifier",
        "ExtraTreesClassifier",
        "HistGradientBoostingClassifier",
        "KNeighborsClassifier",
    ),
    Task.REGRESSION: (
        "Ridge",
        "RandomForestRegressor",
        "ExtraTreesRegressor",
        "HistGradientBoostingRegressor",
        "KNeighborsRegressor",
    ),
}

#: AutoML's space for each curated estimator; another estimator is tried with its defaults.
DEFAULT_SPACES: dict[str, dict[str, Spec]] = {
    "LogisticRegression": {"C": _uniform("float", 0.001, 100.0, log=True), "max_iter": [1000]},
    "RandomForestClassifier": _forest(),
    "ExtraTreesClassifier": _forest(),
    "HistGradientBoostingClassifier": _boosting(),
    "KNeighborsClassifier": _neighbours(),
    "Ridge": {"alpha": _uniform("float", 0.001, 1000.0, log=True)},
    "RandomForestRegressor": _forest(),
    "ExtraTreesRegressor": _forest(),
    "HistGradientBoostingRegressor": _boosting(),
    "KNeighborsRegressor": _neighbours(),
}


def default_space(estimator: str) -> dict[str, Spec]:
    """AutoML's space for ``estimator`` (empty: its defaults only)."""
    return dict(DEFAULT_SPACES.get(estimator, {}))


# --- checking a space against its estimator --------------------------------------------------


def check_space(estimator: str, space: Mapping[str, Spec], limits: LimitsSettings) -> None:
    """Every parameter of ``space`` is one ``estimator`` takes, and every value one it
    accepts within the service's limits; :class:`BadRequest` naming the parameter if not."""
    for param, spec in space.items():
        where = f"space of {estimator}: parameter {param!r}"
        if isinstance(spec, Distribution):
            for value in _checked_ends(spec, where):
                check_value(estimator, param, value, limits, where)
            continue
        if not spec:
            raise BadRequest(f"{where} has an empty list; give at least one value to try")
        for value in spec:
            check_value(estimator, param, value, limits, where)


def _checked_ends(spec: Distribution, where: str) -> tuple[Any, Any]:
    """A distribution's two ends, as the estimator will get them; 400 if they cannot be."""
    low, high = float(spec.low), float(spec.high)
    if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
        raise BadRequest(f"{where}: 'low' must be below 'high' (both finite numbers)")
    if spec.log and low <= 0:
        raise BadRequest(f"{where}: a distribution with \"log\": true needs 'low' above 0")
    if spec.type == "int":
        if not (low.is_integer() and high.is_integer()):
            raise BadRequest(f"{where}: an int distribution needs whole numbers 'low' and 'high'")
        return int(low), int(high)
    return low, high


def check_value(estimator: str, param: str, value: Any, limits: LimitsSettings, where: str) -> None:
    """One value of one parameter, checked as a training request's would be; 400 if refused."""
    try:
        allowed_estimators.make_estimator(estimator, {param: value})
        allowed_estimators.check_limits(estimator, {param: value}, limits)
    except EstimatorError as exc:
        raise BadRequest(f"{where}: {exc.message}") from None
    except (TypeError, ValueError) as exc:  # an estimator's own constructor refusing
        raise BadRequest(f"{where}: {value!r} is refused: {exc}") from None


# --- what the planners need ------------------------------------------------------------------


def grid_values(spec: Spec) -> list[Any]:
    """The values a grid search tries: a list as given, a distribution's ends and middle."""
    if not isinstance(spec, Distribution):
        return list(spec)
    low, high = spec.low, spec.high
    middle = math.sqrt(low * high) if spec.log else (low + high) / 2
    values: list[Any] = [low, middle, high]
    if spec.type == "int":
        values = [int(round(value)) for value in values]
    unique: list[Any] = []
    for value in values[:GRID_POINTS]:
        if value not in unique:
            unique.append(value)
    return unique


def grid_size(spaces: Spaces) -> int:
    """How many configurations a grid search over ``spaces`` has (each estimator's
    product of value counts, added up)."""
    return sum(
        math.prod(len(grid_values(spec)) for spec in space.values()) for space in spaces.values()
    )


def all_lists(spaces: Spaces) -> bool:
    """Every parameter is a list (a random search then draws without replacement)."""
    return all(
        not isinstance(spec, Distribution) for space in spaces.values() for spec in space.values()
    )


def as_json(spaces: Spaces) -> dict[str, dict[str, Any]]:
    """Spaces as plain JSON values (the search's record)."""
    value = msgspec.to_builtins(spaces)
    assert isinstance(value, dict)
    return value


def from_json(spaces: Mapping[str, Mapping[str, Any]]) -> Spaces:
    """Spaces read back from a search's record."""
    return msgspec.convert(spaces, Spaces)
