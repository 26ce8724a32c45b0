"""The records the catalog keeps, by name: what a data set or a model record holds.

Records are JSON objects in Redis and in API answers; these TypedDicts say
which keys they have, so a reader does not have to find the code that wrote
them. :class:`ModelStatus` is a model's life.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NotRequired, TypedDict

from .bundles import EngineInfo, SchemaColumn, TrainingWarning
from .column_roles import RoleEvidence


class ModelStatus(StrEnum):
    """``queued`` → ``training`` → ``ready`` or ``failed``."""

    QUEUED = "queued"
    TRAINING = "training"
    READY = "ready"
    FAILED = "failed"


class DatasetStatus(StrEnum):
    """``ready`` at once (small uploads), or ``profiling`` → ``ready`` or ``failed``."""

    PROFILING = "profiling"
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
    #: What the column is for (a column_roles.Role), and why (profiles from before: absent).
    role: NotRequired[str]
    role_evidence: NotRequired[RoleEvidence]


class DatasetRecord(TypedDict):
    """An uploaded data set: its file and, once profiled, its profile.

    The profile's keys (``rows``, ``columns``, ``string_columns``, ``delimiter``,
    ``formula_cells``) are present only once ``status`` is ``ready``.
    """

    id: str
    name: str
    #: The owner's user name, for people to read; access checks use ``owner_id``.
    owner: str
    #: The owner's account id (mlservice.accounts): what ownership is keyed by.
    owner_id: str
    format: str  # csv or parquet
    size_bytes: int
    #: A DatasetStatus. Records from before profiling could be deferred have no key and are
    #: ready: read it with ``dataset_files.status_of``.
    status: NotRequired[str]
    #: Why profiling failed (status ``failed``; the file is gone, the record stays).
    error: NotRequired[str]
    #: The Celery task profiling it (uploads larger than [service] inline_profile_mb).
    task_id: NotRequired[str]
    rows: NotRequired[int]
    columns: NotRequired[list[ColumnProfile]]
    #: CSV columns read as text because their values are mixed (not shown by the API).
    string_columns: NotRequired[list[str]]
    #: CSV only: the delimiter detected at upload (``,`` ``;`` tab ``|``). Records from
    #: before it was detected have no key and mean ``,``: read it with ``delimiter_of``.
    #: The API shows ``null`` for a Parquet data set (``dataset_files.public``).
    delimiter: NotRequired[str | None]
    #: CSV: the numbers' decimal mark, ``.`` or ``,`` (detected, or given at upload); records
    #: from before it was detected have no key and mean ``.``: read it with ``dialect_of``.
    decimal: NotRequired[str]
    #: CSV: the first column had no name (pandas' index) and is left out of the data set.
    index_column_dropped: NotRequired[bool]
    #: What profiling did that the user should know (an index column left out).
    notes: NotRequired[list[str]]
    #: Text cells starting with = + - @ tab or CR (spreadsheet formulas); absent: unknown.
    formula_cells: NotRequired[int]
    #: sha256 of the stored file (hex), once profiled; absent for data sets stored before it.
    sha256: NotRequired[str]
    #: Seconds from the first byte stored to the record (profile included when inline).
    upload_seconds: float
    #: Seconds the deferred profile took (status ``ready`` or ``failed`` after ``profiling``).
    profile_seconds: NotRequired[float]
    created_at: NotRequired[float]


class ModelRecord(TypedDict):
    """A model: the request it was trained from, then what training produced."""

    id: str
    name: str
    owner: str  # the user name, for people to read
    owner_id: str  # the account id, what ownership is keyed by
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
    #: A registered model's name: the model becomes its next version once ready.
    register_as: NotRequired[str | None]
    #: Roles the request gave columns (column -> numeric, categorical, datetime, text, ignore).
    columns: NotRequired[dict[str, str] | None]
    # Training's outcome.
    started_at: NotRequired[float]
    worker: NotRequired[str]  # <host name>:<process id> of the run that trained it last
    finished_at: NotRequired[float]
    error: NotRequired[str]
    version: NotRequired[int]
    size_bytes: NotRequired[int]
    #: sha256 (hex) of the bundle file, for a client to check a download against.
    bundle_sha256: NotRequired[str]
    classes: NotRequired[list[Any] | None]
    input_schema: NotRequired[list[SchemaColumn]]
    metrics: NotRequired[dict[str, Any]]
    versions: NotRequired[dict[str, str]]
    training_seconds: NotRequired[float | None]
    engine: NotRequired[EngineInfo]
    #: What training warned of: columns left out, rows dropped, estimator warnings.
    warnings: NotRequired[list[TrainingWarning]]
    # Lineage (trained models): what a registered version shows of where it came from.
    dataset_sha256: NotRequired[str | None]  # the data set file's, when training read it
    service_version: NotRequired[str]  # the service's version on the worker that trained it
    #: Why the model could not become a version of ``register_as`` (it serves all the same).
    register_error: NotRequired[str]
    #: Its predictions are kept in the prediction log (docs/monitoring.md); absent: off.
    log_predictions: NotRequired[bool]
