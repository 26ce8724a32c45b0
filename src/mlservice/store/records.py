"""The records the catalog keeps, by name: what a data set or a model record holds.

Records are JSON objects in Redis and in API answers; these TypedDicts say
which keys they have, so a reader does not have to find the code that wrote
them. :class:`ModelStatus` is a model's life.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NotRequired, TypedDict

from .bundles import EngineInfo, SchemaColumn


class ModelStatus(StrEnum):
    """``queued`` → ``training`` → ``ready`` or ``failed``."""

    QUEUED = "queued"
    TRAINING = "training"
    READY = "ready"
    FAILED = "failed"


class ModelSource(StrEnum):
    """How a model came to be."""

    TRAINED = "trained"
    UPLOAD = "upload"


class ColumnProfile(TypedDict):
    """One column of a data set, as profiled at upload."""

    name: str
    dtype: str  # integer, float, boolean, empty, datetime or string
    missing: int
    distinct: int
    distinct_is_lower_bound: bool
    categories_sample: NotRequired[list[str]]  # non-numeric columns


class DatasetRecord(TypedDict):
    """An uploaded data set: its file and its profile."""

    id: str
    name: str
    owner: str
    format: str  # csv or parquet
    size_bytes: int
    rows: int
    columns: list[ColumnProfile]
    #: CSV columns read as text because their values are mixed (not shown by the API).
    string_columns: list[str]
    #: CSV only: the delimiter detected at upload (``,`` ``;`` tab ``|``). Records from
    #: before it was detected have no key and mean ``,``: read it with ``delimiter_of``.
    delimiter: NotRequired[str]
    #: Text cells starting with = + - @ tab or CR (spreadsheet formulas); absent: unknown.
    formula_cells: NotRequired[int]
    upload_seconds: float
    created_at: NotRequired[float]


class ModelRecord(TypedDict):
    """A model: the request it was trained from, then what training produced."""

    id: str
    name: str
    owner: str
    status: str  # a ModelStatus
    source: str  # a ModelSource
    created_at: NotRequired[float]
    # The training request (trained models).
    task_id: NotRequired[str]
    dataset_id: NotRequired[str]
    target: NotRequired[str]
    features: NotRequired[list[str] | None]
    estimator: NotRequired[str]
    task: NotRequired[str]  # a Task
    params: NotRequired[dict[str, Any]]
    test_size: NotRequired[float]
    cv: NotRequired[int | None]
    callback_url: NotRequired[str | None]
    compile: NotRequired[bool]
    # Training's outcome.
    started_at: NotRequired[float]
    finished_at: NotRequired[float]
    error: NotRequired[str]
    version: NotRequired[int]
    size_bytes: NotRequired[int]
    classes: NotRequired[list[Any] | None]
    input_schema: NotRequired[list[SchemaColumn]]
    metrics: NotRequired[dict[str, Any]]
    versions: NotRequired[dict[str, str]]
    training_seconds: NotRequired[float | None]
    engine: NotRequired[EngineInfo]
