"""A training request (``POST /resource/models``): its shape checked, then its meaning.

Everything a request can get wrong is checked before it is accepted, so the
client hears about it at once rather than from a failed task: the body's
fields and types (400), then the estimator, its parameters, the target and
the features against the data set's profile (422).
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta

from ..bodies import HEX_ID, REGISTERED_NAME, Body, decode
from ..errors import BadRequest, Invalid
from ..security import Identity
from ..store import dataset_files
from ..store.bundles import Task
from ..store.catalog import Catalog
from ..store.column_roles import OVERRIDES
from ..store.records import ColumnProfile, DatasetRecord, ModelRecord, ModelSource, ModelStatus
from . import allowed_estimators

MAX_CLASSES = 1000
#: A numeric target with more distinct values than this looks continuous to a classifier
#: (unless the request says ``target_is_categorical``).
MAX_NUMERIC_CLASSES = 50
NUMERIC_DTYPES = ("integer", "float")


class TrainingRequest(Body):
    """A ``POST /resource/models`` body (the contract's ``NewModel``)."""

    dataset_id: Annotated[str, Meta(pattern=HEX_ID)]
    target: str
    estimator: str
    params: dict[str, Any] | None = None
    features: Annotated[list[str], Meta(min_length=1)] | None = None
    test_size: float = 0.25
    cv: int | None = None
    callback_url: str | None = None
    callback_secret: str | None = None
    name: Annotated[str, Meta(max_length=200)] | None = None
    #: Convert to ONNX after training (when the service's [inference] compile_onnx allows).
    compile: bool = True
    #: A classifier's numeric target with many distinct values holds classes, not a quantity.
    target_is_categorical: bool = False
    #: A registered model's name: once ready, the model becomes its next version.
    register_as: Annotated[str, Meta(pattern=f"^{REGISTERED_NAME}$")] | None = None
    #: Roles for columns, over the profile's: column -> numeric, categorical, datetime,
    #: text or ignore.
    columns: dict[str, str] | None = None

    complaints = {
        "dataset_id": "must be a data set id (32 hexadecimal digits)",
        "target": "must be the name of a column (a string)",
        "estimator": "must be an estimator name from GET /resource/estimators (a string)",
        "params": "must be a JSON object of parameter names to values",
        "features": "must be a non-empty list of column names",
        "test_size": "must be a number between 0.05 and 0.5",
        "cv": "must be an integer between 2 and 20 (folds)",
        "callback_url": "must be an http:// or https:// URL (a string)",
        "callback_secret": "must be a string of 16 to 256 characters",
        "name": "must be a string of at most 200 characters",
        "compile": "must be true or false",
        "target_is_categorical": "must be true or false",
        "register_as": (
            "must be a registered model's name: 1-64 letters, digits or '.', '_', '-', "
            "starting with a letter or digit"
        ),
        "columns": (
            "must map column names to roles: " + ", ".join(OVERRIDES) + ' (e.g. {"Name": '
            '"ignore", "Year": "datetime"})'
        ),
    }
    example = '{"dataset_id", "target", "estimator", "params"}'

    @property
    def task(self) -> Task:
        return allowed_estimators.task_of(self.estimator)

    @property
    def estimator_params(self) -> dict[str, Any]:
        """The estimator's parameters (``null`` or absent: the defaults)."""
        return self.params or {}

    def record(self, owner: Identity, task_id: str) -> ModelRecord:
        """The new model's record: ``queued``, to be trained by Celery task ``task_id``."""
        return {
            "id": Catalog.new_id(),
            "task_id": task_id,
            "name": self.name or f"{self.estimator} on {self.target}",
            "owner": owner.username,
            "owner_id": owner.require_account_id(),
            "status": ModelStatus.QUEUED,
            "source": ModelSource.TRAINED,
            "dataset_id": self.dataset_id,
            "target": self.target,
            "features": self.features,
            "estimator": self.estimator,
            "task": self.task,
            "params": self.estimator_params,
            "test_size": self.test_size,
            "cv": self.cv,
            "callback_url": self.callback_url,
            "compile": self.compile,
            "register_as": self.register_as,
            "columns": self.columns,
        }


def parse_training_request(body: Any) -> TrainingRequest:
    """The body as a :class:`TrainingRequest` (400 naming a field of the wrong shape), then
    the ranges and pairings its fields must keep (422)."""
    request = decode(body, TrainingRequest)
    if not 0.05 <= request.test_size <= 0.5:
        raise Invalid("'test_size' must be a number between 0.05 and 0.5")
    if request.cv is not None and not 2 <= request.cv <= 20:
        raise Invalid("'cv' must be an integer between 2 and 20 (folds)")
    if request.callback_url is not None and (
        request.callback_secret is None or not 16 <= len(request.callback_secret) <= 256
    ):
        raise Invalid(
            "'callback_secret' (16 to 256 characters) is required with 'callback_url': the "
            "callback is signed with it so your receiver can check it came from this service"
        )
    if request.callback_url is None and request.callback_secret is not None:
        raise Invalid("'callback_secret' needs a 'callback_url'")
    for column, role in (request.columns or {}).items():
        if role not in OVERRIDES:
            raise BadRequest(
                f"'columns' gives column {column!r} the role {role!r}; the roles are "
                + ", ".join(OVERRIDES)
            )
    return request


def check_against_dataset(request: TrainingRequest, dataset: DatasetRecord) -> None:
    """Estimator, parameters, target and features must fit the data set (422 if not);
    a data set still being profiled, or whose profile failed, is 409."""
    dataset_files.require_ready(dataset)
    allowed_estimators.make_estimator(request.estimator, request.estimator_params)
    columns = {column["name"]: column for column in dataset["columns"]}
    if request.target not in columns:
        raise Invalid(
            f"target {request.target!r} is not a column of the data set; "
            f"columns: {', '.join(columns)}"
        )
    features = request.features or [name for name in columns if name != request.target]
    missing = [name for name in features if name not in columns]
    if missing:
        raise Invalid(f"feature column(s) {', '.join(map(repr, missing))} are not in the data set")
    if request.target in features:
        raise Invalid(f"the target {request.target!r} cannot also be a feature")
    if not features:
        raise Invalid("the data set has no feature columns besides the target")
    _check_roles(request, features, columns)
    target = columns[request.target]
    if request.task == Task.CLASSIFICATION:
        if target["distinct"] < 2:
            raise Invalid(f"target {request.target!r} has fewer than 2 classes")
        if _looks_continuous(target) and not request.target_is_categorical:
            raise Invalid(_continuous_message(request, target, dataset["rows"]))
        if target["distinct_is_lower_bound"] or target["distinct"] > MAX_CLASSES:
            raise Invalid(
                f"target {request.target!r} has more than {MAX_CLASSES} distinct values: "
                f"{request.estimator} is a classifier; use a regressor"
            )
    elif target["dtype"] not in NUMERIC_DTYPES:
        raise Invalid(
            f"target {request.target!r} is {target['dtype']}, but "
            f"{request.estimator} is a regressor and needs numbers"
        )
    if dataset["rows"] - target["missing"] < 10:
        raise Invalid("the data set needs at least 10 rows with a target value")


def _check_roles(
    request: TrainingRequest, features: list[str], columns: dict[str, ColumnProfile]
) -> None:
    """The request's ``"columns"`` name feature columns of the data set (400 if not)."""
    for name in request.columns or {}:
        if name not in columns:
            raise BadRequest(
                f"'columns' names {name!r}, which is not a column of the data set; columns: "
                + ", ".join(columns)
            )
        if name not in features:
            raise BadRequest(
                f"'columns' names {name!r}, which is not a feature of this model (the target, "
                "or left out of 'features'); give roles to feature columns only"
            )


def _looks_continuous(target: ColumnProfile) -> bool:
    """A numeric column with more distinct values than a classifier should take as classes."""
    return target["dtype"] in NUMERIC_DTYPES and (
        target["distinct_is_lower_bound"] or target["distinct"] > MAX_NUMERIC_CLASSES
    )


def _continuous_message(request: TrainingRequest, target: ColumnProfile, rows: int) -> str:
    """Why a classifier is refused on a numeric target, and the two ways out."""
    distinct = target["distinct"]
    count = f"more than {distinct}" if target["distinct_is_lower_bound"] else str(distinct)
    return (
        f"target {request.target!r} looks continuous: it is {target['dtype']} with {count} "
        f"distinct values in {rows} rows, and {request.estimator} is a classifier, which "
        f"would take each value as a class; use a regressor such as "
        f"{allowed_estimators.regressor_for(request.estimator)}, or, if these values are "
        f'classes, send "target_is_categorical": true (at most {MAX_CLASSES} classes)'
    )
