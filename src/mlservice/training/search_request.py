"""A search request (``POST /resource/searches``): its shape, its space, its budget, then
its meaning against the data set, all checked before anything runs.

A search is either one ``estimator`` and its ``space``, or ``"automl": true``
with an optional list of ``estimators`` (default: a curated set for the task,
each with a curated space: :mod:`.search_space`). Refusals of the body's shape,
of an estimator, a space or a scorer are 400, naming the field or parameter;
what does not fit the data set or a limit of the service is 422, like a
training request's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from sklearn.metrics import get_scorer, get_scorer_names

from ..bodies import HEX_ID, REGISTERED_NAME, Body, decode
from ..config import LimitsSettings, SearchSettings
from ..errors import BadRequest, Invalid
from ..security import Identity
from ..store.bundles import Task
from ..store.catalog import Catalog
from ..store.records import DatasetRecord
from ..store.search_records import SearchRecord, SearchStatus
from . import allowed_estimators, search_space
from .allowed_estimators import EstimatorError
from .request import MAX_NUMERIC_CLASSES, NUMERIC_DTYPES, TrainingRequest, check_against_dataset
from .search_space import Spaces, Spec

#: The strategies: every configuration of a grid, draws at random, or Optuna's TPE.
STRATEGIES = ("grid", "random", "tpe")
#: The scorer of a search that names none, per task.
DEFAULT_SCORING = {Task.CLASSIFICATION: "accuracy", Task.REGRESSION: "r2"}
#: Where scikit-learn's scorer functions live -> the task they judge.
_SCORER_MODULES = {
    "sklearn.metrics._classification": Task.CLASSIFICATION,
    "sklearn.metrics._ranking": Task.CLASSIFICATION,
    "sklearn.metrics._scorer": Task.CLASSIFICATION,  # likelihood ratios
    "sklearn.metrics._regression": Task.REGRESSION,
}
SPACE_SHAPE = (
    'must be a list of values to try or a distribution {"type": "int"|"float", "low": '
    'number, "high": number, "log": true|false}'
)


class SearchRequest(Body):
    """A ``POST /resource/searches`` body (the contract's ``NewSearch``)."""

    dataset_id: Annotated[str, Meta(pattern=HEX_ID)]
    target: str
    features: Annotated[list[str], Meta(min_length=1)] | None = None
    test_size: float = 0.25
    cv: int = 5
    scoring: str | None = None
    random_state: Annotated[int, Meta(ge=0)] = 0
    estimator: str | None = None
    space: dict[str, Spec] | None = None
    automl: bool = False
    estimators: Annotated[list[str], Meta(min_length=1)] | None = None
    strategy: Literal["grid", "random", "tpe"] = "random"
    max_trials: int | None = None
    time_budget_s: float | None = None
    trial_time_limit_s: float | None = None
    register_as: Annotated[str, Meta(pattern=f"^{REGISTERED_NAME}$")] | None = None
    name: Annotated[str, Meta(max_length=200)] | None = None
    target_is_categorical: bool = False

    complaints = {
        "dataset_id": "must be a data set id (32 hexadecimal digits)",
        "target": "must be the name of a column (a string)",
        "features": "must be a non-empty list of column names",
        "test_size": "must be a number between 0.05 and 0.5",
        "cv": "must be an integer between 2 and 20 (folds)",
        "scoring": "must be a scikit-learn scorer name (a string), e.g. accuracy or r2",
        "random_state": "must be an integer of at least 0",
        "estimator": "must be an estimator name from GET /resource/estimators (a string)",
        "space": "must be a JSON object of parameter names to values to try or distributions",
        "automl": "must be true or false",
        "estimators": "must be a non-empty list of estimator names",
        "strategy": "must be one of grid, random, tpe",
        "max_trials": "must be an integer of at least 1",
        "time_budget_s": "must be a number of seconds above 0",
        "trial_time_limit_s": "must be a number of seconds above 0",
        "register_as": (
            "must be a registered model's name: 1-64 letters, digits or '.', '_', '-', "
            "starting with a letter or digit"
        ),
        "name": "must be a string of at most 200 characters",
        "target_is_categorical": "must be true or false",
    }
    example = '{"dataset_id", "target", "estimator", "space", "strategy", "max_trials"}'


def parse_search_request(body: Any) -> SearchRequest:
    """The body as a :class:`SearchRequest` (400 naming the field, or the space's parameter,
    of the wrong shape), then the pairings and ranges its fields must keep."""
    if isinstance(body, dict) and isinstance(body.get("space"), dict):
        for param, spec in body["space"].items():
            try:
                msgspec.convert(spec, Spec, strict=True)
            except msgspec.ValidationError as exc:
                detail = str(exc).split(" - at ")[0]
                raise BadRequest(f"space: parameter {param!r} {SPACE_SHAPE} ({detail})") from None
    request = decode(body, SearchRequest)
    if request.automl:
        if request.estimator is not None or request.space is not None:
            raise BadRequest(
                'an AutoML search ("automl": true) chooses the estimators and their spaces: '
                "leave out 'estimator' and 'space' (name candidates in 'estimators')"
            )
    else:
        if request.estimator is None:
            raise BadRequest("'estimator' is required (with its 'space'), or send \"automl\": true")
        if request.estimators is not None:
            raise BadRequest("'estimators' goes with \"automl\": true; give one 'estimator'")
    if not 0.05 <= request.test_size <= 0.5:
        raise BadRequest("'test_size' must be a number between 0.05 and 0.5")
    if not 2 <= request.cv <= 20:
        raise BadRequest("'cv' must be an integer between 2 and 20 (folds)")
    if request.max_trials is not None and request.max_trials < 1:
        raise BadRequest("'max_trials' must be an integer of at least 1")
    for field in ("time_budget_s", "trial_time_limit_s"):
        value = getattr(request, field)
        if value is not None and not value > 0:
            raise BadRequest(f"{field!r} must be a number of seconds above 0")
    return request


def estimator_names(request: SearchRequest, task: Task) -> list[str]:
    """The estimators the search tries: the one named, the AutoML list, or the curated set."""
    if request.estimator is not None:
        return [request.estimator]
    if request.estimators is not None:
        return list(dict.fromkeys(request.estimators))
    return list(search_space.DEFAULT_ESTIMATORS[task])


def task_of(request: SearchRequest, dataset: DatasetRecord) -> Task:
    """The search's task: its estimators' (which must agree), else (AutoML without a list)
    the target's: a number with many distinct values is a quantity (regression), anything
    else classes, unless ``target_is_categorical``."""
    named = [request.estimator] if request.estimator is not None else request.estimators
    if named:
        tasks = set()
        for name in named:
            try:
                tasks.add(allowed_estimators.task_of(name))
            except EstimatorError as exc:
                raise BadRequest(exc.message) from None
        if len(tasks) > 1:
            raise BadRequest(
                "'estimators' mixes classifiers and regressors: a search solves one task"
            )
        return tasks.pop()
    columns = {column["name"]: column for column in dataset.get("columns", [])}
    target = columns.get(request.target)
    if target is None:
        return Task.CLASSIFICATION  # check_against_dataset names the missing column
    continuous = target["dtype"] in NUMERIC_DTYPES and (
        target["distinct_is_lower_bound"] or target["distinct"] > MAX_NUMERIC_CLASSES
    )
    return (
        Task.REGRESSION if continuous and not request.target_is_categorical else Task.CLASSIFICATION
    )


def spaces_of(request: SearchRequest, names: list[str], limits: LimitsSettings) -> Spaces:
    """Each estimator's space (the request's, or AutoML's curated one), every name and value
    checked against its estimator (400 naming the parameter)."""
    spaces: Spaces = {}
    for name in names:
        space = (
            dict(request.space or {}) if not request.automl else search_space.default_space(name)
        )
        search_space.check_space(name, space, limits)
        spaces[name] = space
    return spaces


def scorer_of(request: SearchRequest, task: Task) -> str:
    """The scikit-learn scorer the trials are ranked by; 400 for an unknown one or one of
    another task."""
    if request.scoring is None:
        return DEFAULT_SCORING[task]
    if request.scoring not in get_scorer_names():
        raise BadRequest(
            f"'scoring' {request.scoring!r} is not a scikit-learn scorer; for {task} use e.g. "
            f"{DEFAULT_SCORING[task]} (the names: sklearn.metrics.get_scorer_names())"
        )
    function = getattr(get_scorer(request.scoring), "_score_func", None)
    judged = _SCORER_MODULES.get(getattr(function, "__module__", ""))
    if judged != task:
        raise BadRequest(
            f"'scoring' {request.scoring!r} does not judge {task}; use e.g. {DEFAULT_SCORING[task]}"
        )
    return request.scoring


def plan(
    request: SearchRequest, spaces: Spaces, settings: SearchSettings
) -> tuple[int, int | None]:
    """(how many configurations the planner draws from, the trials the search will run if
    known), within ``[search]``'s limits (422 naming the setting)."""
    top = settings.max_trials
    if request.max_trials is not None and request.max_trials > top:
        raise Invalid(f"'max_trials' {request.max_trials} is more than [search] max_trials = {top}")
    budget = request.time_budget_s
    if budget is not None and budget > settings.max_time_budget_seconds:
        raise Invalid(
            f"'time_budget_s' {budget:g} is more than [search] max_time_budget_seconds = "
            f"{settings.max_time_budget_seconds:g}"
        )
    limit = request.trial_time_limit_s
    if limit is not None and limit > settings.trial_time_limit_seconds:
        raise Invalid(
            f"'trial_time_limit_s' {limit:g} is more than [search] trial_time_limit_seconds = "
            f"{settings.trial_time_limit_seconds:g}"
        )
    size = search_space.grid_size(spaces)
    if request.strategy == "grid":
        if request.max_trials is None and size > top:
            raise Invalid(
                f"the grid has {size} configurations, more than [search] max_trials = {top}: "
                "give fewer values, or 'max_trials' (the grid's first ones are tried)"
            )
        total = min(size, request.max_trials or size)
        return total, total
    if request.max_trials is None and budget is None:
        raise Invalid(
            f"a {request.strategy} search needs a budget: 'max_trials' and/or 'time_budget_s'"
        )
    finite = search_space.all_lists(spaces)
    if request.strategy == "random":
        draws = min(size, top) if finite else (request.max_trials or top)
        if request.max_trials is not None:
            return draws, min(draws, request.max_trials)
        return draws, draws if finite else None
    return request.max_trials or top, request.max_trials


def check_against_data(
    request: SearchRequest, task: Task, names: list[str], dataset: DatasetRecord
) -> None:
    """Target and features must fit the data set as a training request's must (422 if not;
    409 while it is being profiled)."""
    for name in names:
        if allowed_estimators.task_of(name) != task:
            raise BadRequest(
                f"{name} is a {allowed_estimators.task_of(name)} estimator, but the target "
                f"{request.target!r} calls for {task}"
            )
    probe = TrainingRequest(
        dataset_id=request.dataset_id,
        target=request.target,
        estimator=names[0],
        features=request.features,
        test_size=request.test_size,
        target_is_categorical=request.target_is_categorical,
    )
    check_against_dataset(probe, dataset)


def new_record(
    request: SearchRequest,
    owner: Identity,
    task: Task,
    spaces: Spaces,
    scoring: str,
    planned: tuple[int, int | None],
    settings: SearchSettings,
) -> SearchRecord:
    """The new search's record: ``queued``, its request resolved."""
    plan_size, total = planned
    what = request.estimator or "AutoML"
    return {
        "id": Catalog.new_id(),
        "name": request.name or f"{request.strategy} search of {what} on {request.target}",
        "owner": owner.username,
        "owner_id": owner.require_account_id(),
        "status": SearchStatus.QUEUED,
        "dataset_id": request.dataset_id,
        "target": request.target,
        "features": request.features,
        "test_size": request.test_size,
        "cv": request.cv,
        "scoring": scoring,
        "random_state": request.random_state,
        "strategy": request.strategy,
        "automl": request.automl,
        "task": task,
        "space": search_space.as_json(spaces),
        "max_trials": request.max_trials,
        "time_budget_s": request.time_budget_s,
        "trial_time_limit_s": request.trial_time_limit_s or settings.trial_time_limit_seconds,
        "register_as": request.register_as,
        "plan_size": plan_size,
        "trials_total": total,
    }


def accept(
    body: Any, owner: Identity, dataset_of: Any, limits: LimitsSettings, settings: SearchSettings
) -> SearchRecord:
    """Everything a request can get wrong, checked in order; the new search's record.

    ``dataset_of(dataset_id)`` is the caller's data set record (404 if not theirs).
    """
    request = parse_search_request(body)
    dataset: DatasetRecord = dataset_of(request.dataset_id)
    task = task_of(request, dataset)
    names = estimator_names(request, task)
    spaces = spaces_of(request, names, limits)
    scoring = scorer_of(request, task)
    planned = plan(request, spaces, settings)
    check_against_data(request, task, names, dataset)
    return new_record(request, owner, task, spaces, scoring, planned, settings)
