"""The service's answers as typed dictionaries, named as in ml-service.yml's schemas.

They are what the JSON already is (no conversion, no copies), so a caller's
type checker and editor know the fields; ``total=False`` marks records whose
fields depend on their state (a model carries ``metrics`` once ``ready``).
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class Token(TypedDict):
    token: str
    token_type: str
    expires_in: int


class User(TypedDict):
    username: str
    role: str
    #: ``true`` while an admin has disabled the account (services before it do not say).
    disabled: NotRequired[bool]


class TaskAccepted(TypedDict):
    task_id: str
    status_url: str


class ModelAccepted(TaskAccepted):
    model_id: str


class TaskStatus(TypedDict, total=False):
    task_id: str
    state: str  # PENDING, STARTED, PROGRESS, SUCCESS, FAILURE, RETRY, REVOKED
    done: bool
    progress: float
    status: str
    result: dict[str, Any]
    error: str


class DatasetColumn(TypedDict, total=False):
    name: str
    dtype: str
    missing: int
    distinct: int
    distinct_is_lower_bound: bool
    categories_sample: list[str]
    role: str  # numeric, categorical, datetime, text, id, constant
    role_evidence: dict[str, Any]  # distinct_ratio, examples, reason, parse_rate, mean_words


class Dataset(TypedDict, total=False):
    id: str
    name: str
    owner: str
    format: str
    size_bytes: int
    status: str  # profiling, ready, failed (see DATASET_STATES)
    error: str  # failed only
    task_id: str  # uploads over the service's inline_profile_mb
    status_url: str  # the 202 answer only
    profile_seconds: float  # profiled by a worker, once settled
    rows: int  # ready only, like columns, delimiter and formula_cells
    columns: list[DatasetColumn]
    decimal: str  # CSV: the numbers' decimal mark, . or ,
    index_column_dropped: bool  # CSV: a first column without a name (pandas' index) left out
    notes: list[str]
    delimiter: str | None
    formula_cells: int
    upload_seconds: float
    created_at: float


#: A data set's ``status`` values (ml-service.yml's DatasetStatus): ``profiling`` until a
#: worker has read a large upload, then ``ready`` (with the profile) or ``failed`` (``error``).
PROFILING, READY, FAILED = "profiling", "ready", "failed"
DATASET_STATES = (PROFILING, READY, FAILED)


class DatasetList(TypedDict):
    datasets: list[Dataset]
    page: int
    per_page: int
    total: int


class Estimator(TypedDict):
    name: str
    task: str
    module: str
    params: dict[str, Any]
    param_types: NotRequired[dict[str, str]]  # JSON types per parameter: integer|null...


class InputColumn(TypedDict, total=False):
    name: str
    type: str  # number, string or datetime
    categories: list[str]
    role: str  # text (TF-IDF) where the type does not say it
    format: str | None  # datetime: the training values' strftime format
    max_categories: int


class Model(TypedDict, total=False):
    id: str
    name: str
    owner: str
    status: str  # queued, training, ready, failed
    source: str
    dataset_id: str
    target: str
    features: list[str] | None
    estimator: str
    task: str
    params: dict[str, Any]
    test_size: float
    cv: int | None
    task_id: str
    created_at: float
    started_at: float
    finished_at: float
    training_seconds: float
    version: int
    size_bytes: int
    bundle_sha256: str
    metrics: dict[str, Any]
    input_schema: list[InputColumn]
    classes: list[Any] | None
    versions: dict[str, str]
    engine: dict[str, Any]  # name, reason, and onnx_inputs when compiled
    compile: bool
    error: str
    columns: dict[str, str] | None  # roles the training request gave columns
    warnings: list[dict[str, str]]  # kind, message, column


class ModelList(TypedDict):
    models: list[Model]
    page: int
    per_page: int
    total: int


class RegisteredModel(TypedDict, total=False):
    name: str
    owner: str
    description: str
    tags: dict[str, str]
    webhook_url: str | None
    latest_version: int | None
    created_at: float
    updated_at: float
    versions: list[RegisteredVersion]  # GET /resource/registry/{name} only
    aliases: list[RegistryAlias]  # GET /resource/registry/{name} only


class RegisteredModelList(TypedDict):
    registered_models: list[RegisteredModel]
    page: int
    per_page: int
    total: int


class RegisteredVersion(TypedDict, total=False):
    name: str
    version: int
    model_id: str
    registered_by: str
    registered_at: float
    lineage: dict[str, Any]
    aliases: list[str]
    shadow: dict[str, Any] | None  # ShadowCounts


class RegistryAlias(TypedDict):
    alias: str
    version: int | None
    versions: dict[str, int] | None
    shadow: int | None
    set_by: str
    set_at: float


class HistoryEntry(TypedDict):
    id: str
    event: str
    at: float
    actor: str
    version: int | None
    alias: str | None
    before: Any
    after: Any


class Prediction(TypedDict, total=False):
    predictions: list[Any]
    probabilities: list[dict[str, float]]
    #: The request's columns the model does not take, which the service ignored.
    ignored_columns: list[str]


class ReportPlot(TypedDict, total=False):
    name: str
    title: str
    formats: list[str]
    png: str
    svg: str


class Report(TypedDict, total=False):
    metrics: dict[str, Any]
    plots: list[ReportPlot]


class SearchAccepted(TypedDict):
    search_id: str
    status: str
    status_url: str


class SearchTrial(TypedDict, total=False):
    trial: int
    estimator: str
    params: dict[str, Any]
    status: str  # queued, running, done, failed, cancelled, skipped
    cv_scores: list[float] | None
    cv_mean: float | None
    cv_std: float | None
    fit_seconds: float | None
    predict_ms_per_row: float | None
    error: str | None
    warnings: list[str]
    worker: str | None
    deliveries: int
    queued_at: float | None
    started_at: float | None
    finished_at: float | None


class Search(TypedDict, total=False):
    id: str
    name: str
    owner: str
    status: str  # queued, running, done, failed, cancelled
    phase: str  # trials, refitting (while running)
    dataset_id: str
    target: str
    task: str
    strategy: str
    scoring: str
    cv: int
    random_state: int
    space: dict[str, dict[str, Any]]
    max_trials: int | None
    time_budget_s: float | None
    trials: dict[str, int | None]  # queued, running, done, failed, cancelled, skipped, total
    elapsed_s: float | None
    best: SearchTrial | None
    leaderboard: list[SearchTrial]
    best_model_id: str | None
    test_score: float | None
    error: str
    created_at: float
    started_at: float
    finished_at: float


class SearchList(TypedDict):
    searches: list[Search]
    page: int
    per_page: int
    total: int
