"""The service's Prometheus metrics: every one declared here, with the functions that record them.

Gunicorn and Celery each run several processes, and a scrape must count all of
them, so the metrics use prometheus_client's multiprocess mode: with
``PROMETHEUS_MULTIPROC_DIR`` set *before* prometheus_client is imported, every
process writes its values to files in that directory, and whoever serves the
scrape (the API's ``GET /metrics``, the Celery worker's metrics port) adds
them up (:func:`exposition`). The API and the worker each have their own
directory, emptied when they start (:func:`clear_directory`); make run, the
tests and Compose set it. Gauges say how processes combine (``livesum``: the
live processes' values added up).

Labels stay bounded: route templates (never paths), model *kinds* (default or
user, never a model id), engine and task names from fixed sets, status codes.
Anything else is folded into ``other``. Registered names and versions, which
users choose, get labels of their own for the first :data:`REGISTRY_SERIES`
(name, version) pairs a process sees, and ``other`` after that. Nothing here
knows of Flask or Celery: their hooks (:mod:`mlservice.api.monitoring`,
:mod:`mlservice.worker_metrics`) call the functions below.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import redis
from kombu.transport.redis import PRIORITY_STEPS, Channel
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

#: The environment variable prometheus_client reads (at import) for multiprocess mode.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: What a scrape answer is.
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: HTTP methods a request label may name; any other is "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Inference engines a prediction label may name (X-Model-Engine); any other is "other".
ENGINES = frozenset({"onnxruntime", "scikit-learn"})
#: Model kinds: the service's default model, or one a user trained or uploaded.
MODEL_KINDS = frozenset({"default", "user"})
#: Celery task names get a label of their own when they start with this.
TASK_PREFIX = "mlservice.tasks."
#: How a search's trial can end (its leaderboard status).
TRIAL_OUTCOMES = frozenset({"done", "failed", "cancelled", "skipped"})
#: Tasks whose duration is a training's.
TRAINING_TASKS = frozenset({"mlservice.tasks.init_service", "mlservice.tasks.train_model"})
#: The label of a request no route matched.
UNMATCHED = "unmatched"
#: (registered name, version) pairs one process labels by name; later ones are "other".
REGISTRY_SERIES = 200
#: What a shadow copy came to.
SHADOW_OUTCOMES = frozenset({"agreed", "disagreed", "failed", "dropped"})

#: Request latency: fast predictions to a synchronous /resource/init.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
)  # fmt: skip
#: Rows in one prediction request or one grouped predict call.
ROW_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10_000, 50_000, 100_000)
#: Requests grouped into one predict call.
REQUEST_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
#: Loading a model into a worker's cache (unpickling, ONNX session).
LOAD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: A training task, from seconds to the task time limit.
TRAINING_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)

# Metrics without labels write their file as they are declared, below: the directory
# must exist by then, in every process that imports this module.
if os.environ.get(MULTIPROC_ENV):
    Path(os.environ[MULTIPROC_ENV]).mkdir(parents=True, exist_ok=True)

# --- HTTP (the API) --------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "mlservice_http_requests",
    "HTTP requests the API answered, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "mlservice_http_request_duration_seconds",
    "Time from the request reaching Flask to its response (body streaming not included).",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
PREDICTIONS = Counter(
    "mlservice_predictions",
    "Prediction requests answered (200), by model kind (default or user) and engine.",
    ["kind", "engine"],
)
PREDICTION_ROWS = Histogram(
    "mlservice_prediction_rows",
    "Rows in one answered prediction request, by model kind and engine.",
    ["kind", "engine"],
    buckets=ROW_BUCKETS,
)
UPLOAD_BYTES = Counter(
    "mlservice_upload_bytes",
    "Bytes of accepted uploads (Content-Length), by what was uploaded (dataset or model).",
    ["kind"],
)
TOKENS = Counter(
    "mlservice_tokens",
    "GET /resource/auth outcomes: issued, refused (401: wrong or no credentials), "
    "throttled (429: too many failed logins), error (anything else).",
    ["outcome"],
)

REGISTRY_PREDICTIONS = Counter(
    "mlservice_registry_predictions",
    "Predictions by registered name answered (200), by name and version (bounded: "
    "REGISTRY_SERIES pairs per process, then other).",
    ["name", "version"],
)
SHADOW_COMPARISONS = Counter(
    "mlservice_registry_shadow_comparisons",
    "Copies of requests sent to a shadow version, by name, shadow version and outcome "
    "(agreed, disagreed, failed, dropped: the worker's shadow queue was full).",
    ["name", "version", "outcome"],
)

# --- the model cache and batching (API workers) ----------------------------------------

CACHE_HITS = Counter(
    "mlservice_model_cache_hits", "Predictions served by a model already in the worker's cache."
)
CACHE_LOAD_SECONDS = Histogram(
    "mlservice_model_cache_load_seconds",
    "Loading a model version into a worker's cache (its count is the number of loads).",
    buckets=LOAD_BUCKETS,
)
CACHE_EVICTIONS = Counter(
    "mlservice_model_cache_evictions", "Models dropped from a worker's cache."
)
CACHE_BYTES = Gauge(
    "mlservice_model_cache_bytes",
    "Bytes of model bundles held in the live workers' caches.",
    multiprocess_mode="livesum",
)
BATCH_REQUESTS = Histogram(
    "mlservice_batch_requests",
    "scikit-learn path: prediction requests grouped into one predict call.",
    buckets=REQUEST_BUCKETS,
)
BATCH_ROWS = Histogram(
    "mlservice_batch_rows", "scikit-learn path: rows in one predict call.", buckets=ROW_BUCKETS
)

# --- Celery (the worker) ----------------------------------------------------------------

TASKS = Counter(
    "mlservice_celery_tasks",
    "Celery task outcomes (success, failure, retry, revoked, rejected, unknown), by task name.",
    ["task", "outcome"],
)
TRAINING_SECONDS = Histogram(
    "mlservice_training_duration_seconds",
    "Duration of training tasks (init_service, train_model) that ran to an end, by outcome.",
    ["task", "outcome"],
    buckets=TRAINING_BUCKETS,
)

SEARCH_TRIALS_RUNNING = Gauge(
    "mlservice_search_trials_running",
    "Trials of hyperparameter searches being cross-validated by the live worker processes.",
    multiprocess_mode="livesum",
)
SEARCH_TRIALS = Counter(
    "mlservice_search_trials",
    "Trials of hyperparameter searches that ended, by outcome (done, failed, cancelled, "
    "skipped: the search's time budget ran out before it started).",
    ["outcome"],
)

# --- monitoring (docs/monitoring.md) ------------------------------------------------------

PREDICTION_LOG_DROPPED = Counter(
    "mlservice_prediction_log_dropped_rows",
    "Predicted rows left out of a prediction log or drift sample (the writer's queue was "
    "full, or Redis refused them).",
)
#: Models whose drift one scrape reports, at most (the most recently computed first).
DRIFT_SERIES_MODELS = 200


# --- recording ---------------------------------------------------------------------------


def route_label(rule: str | None) -> str:
    """A request's route label: its URL rule (``/resource/models/<hexid:model_id>``)."""
    return rule if rule else UNMATCHED


def method_label(method: str) -> str:
    """A request method, or ``other`` for any a client made up."""
    method = method.upper()
    return method if method in METHODS else "other"


#: The labelled series of :func:`http_request` and :func:`prediction`, by their labels: a
#: request finds its series in one dict lookup instead of two to four ``labels()`` calls
#: (bounded as the labels are: routes, methods, statuses, kinds, engines).
_http_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
_prediction_series: dict[tuple[str, str], tuple[Counter, Histogram]] = {}


def http_request(rule: str | None, method: str, status: int, seconds: float) -> None:
    """One answered request."""
    route = rule or UNMATCHED
    method = method if method in METHODS else method_label(method)
    series = _http_series.get((route, method, status))
    if series is None:
        series = (
            HTTP_REQUESTS.labels(route, method, str(status)),
            HTTP_LATENCY.labels(route, method),
        )
        _http_series[(route, method, status)] = series
    series[0].inc()
    series[1].observe(seconds)


def engine_label(engine: str | None) -> str:
    """The engine that answered, or ``other``."""
    return engine if engine in ENGINES else "other"


def prediction(kind: str, engine: str | None, rows: int | None) -> None:
    """One answered prediction request of ``rows`` rows (``None``: not known)."""
    engine = engine_label(engine)
    series = _prediction_series.get((kind, engine))
    if series is None:
        if kind not in MODEL_KINDS:
            raise ValueError(f"model kind {kind!r} is not one of {sorted(MODEL_KINDS)}")
        series = PREDICTIONS.labels(kind, engine), PREDICTION_ROWS.labels(kind, engine)
        _prediction_series[(kind, engine)] = series
    series[0].inc()
    if rows is not None:
        series[1].observe(rows)


_registry_labels: set[tuple[str, str]] = set()
_registry_lock = threading.Lock()


def registry_labels(name: str, version: int) -> tuple[str, str]:
    """A registered name and version as labels: themselves for the first
    :data:`REGISTRY_SERIES` pairs this process labels, ``other`` after that."""
    pair = (name, str(version))
    if pair in _registry_labels:
        return pair
    with _registry_lock:
        if len(_registry_labels) < REGISTRY_SERIES:
            _registry_labels.add(pair)
            return pair
    return ("other", "other")


def registry_prediction(name: str, version: int) -> None:
    """One answered prediction by registered name."""
    REGISTRY_PREDICTIONS.labels(*registry_labels(name, version)).inc()


def shadow_comparison(name: str, version: int, outcome: str) -> None:
    """One copy of a request sent to shadow ``version``, and what it came to."""
    if outcome not in SHADOW_OUTCOMES:
        raise ValueError(f"shadow outcome {outcome!r} is not one of {sorted(SHADOW_OUTCOMES)}")
    SHADOW_COMPARISONS.labels(*registry_labels(name, version), outcome).inc()


def upload(kind: str, size: int) -> None:
    """An accepted upload of ``size`` bytes."""
    UPLOAD_BYTES.labels(kind).inc(size)


def token_outcome(status: int) -> str:
    """What an answer of GET /resource/auth says about the token."""
    return {200: "issued", 401: "refused", 429: "throttled"}.get(status, "error")


def token_request(status: int) -> None:
    """One answer of GET /resource/auth."""
    TOKENS.labels(token_outcome(status)).inc()


def cache_hit() -> None:
    """A prediction found its model version in the worker's cache."""
    CACHE_HITS.inc()


def cache_load(seconds: float) -> None:
    """A model version was loaded into the worker's cache, in ``seconds``."""
    CACHE_LOAD_SECONDS.observe(seconds)


def cache_eviction() -> None:
    """A model was dropped from the worker's cache (replaced, deleted or pushed out)."""
    CACHE_EVICTIONS.inc()


def cache_bytes(delta: int) -> None:
    """The worker's cache holds ``delta`` more bytes (negative: fewer)."""
    CACHE_BYTES.inc(delta)


def batch(requests: int, rows: int) -> None:
    """One predict call on the scikit-learn path, for ``requests`` requests of ``rows`` rows."""
    BATCH_REQUESTS.observe(requests)
    BATCH_ROWS.observe(rows)


def task_label(name: str | None) -> str:
    """A Celery task's label: the service's own by name, anything else ``other``."""
    return name if name and name.startswith(TASK_PREFIX) else "other"


def task_outcome(name: str | None, outcome: str) -> None:
    """A task ended (or was retried, revoked, rejected) with ``outcome``."""
    TASKS.labels(task_label(name), outcome).inc()


def training_finished(name: str, outcome: str, seconds: float) -> None:
    """A training task ran to an end in ``seconds``; other tasks are not recorded."""
    if name in TRAINING_TASKS:
        TRAINING_SECONDS.labels(name, outcome).observe(seconds)


def search_trials_running(delta: int) -> None:
    """A search's trial started (+1) or stopped (-1) cross-validating in this process."""
    SEARCH_TRIALS_RUNNING.inc(delta)


def search_trial_ended(outcome: str) -> None:
    """A search's trial ended with ``outcome`` (its leaderboard status)."""
    SEARCH_TRIALS.labels(outcome if outcome in TRIAL_OUTCOMES else "other").inc()


def prediction_log_dropped(rows: int) -> None:
    PREDICTION_LOG_DROPPED.inc(rows)


# --- queue depth, read at scrape time ----------------------------------------------------


def queue_keys(queue: str) -> list[str]:
    """The Redis lists that hold a Celery queue's messages (one per priority step)."""
    return [queue if step == 0 else f"{queue}{Channel.sep}{step}" for step in PRIORITY_STEPS]


class QueueDepth(Collector):
    """``mlservice_celery_queue_length``: messages waiting in each Celery queue, from Redis.

    Read when scraped, so it is true even when no worker runs (a backlog is
    what a dead worker leaves). Every API process reports the same numbers:
    take ``max`` over them.
    """

    def __init__(self, store: redis.Redis, queues: Iterable[str]) -> None:
        self._store = store
        self._queues = list(queues)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "mlservice_celery_queue_length",
            "Messages waiting in a Celery queue (Redis list lengths, read at scrape time).",
            labels=["queue"],
        )
        pipe = self._store.pipeline(transaction=False)
        for queue in self._queues:
            for name in queue_keys(queue):
                pipe.llen(name)
        lengths = iter(pipe.execute())
        for queue in self._queues:
            family.add_metric([queue], sum(next(lengths) for _ in PRIORITY_STEPS))
        yield family


class FeatureDrift(Collector):
    """``mlservice_feature_drift{model_id,feature}``: each watched model's latest PSI per
    input column, as its last drift computation left it in Redis (read at scrape time).

    ``read`` gives {model id: {feature: PSI}}: the caller knows the keys. Model ids are
    labels here, as drift is per model; the models are those whose drift was computed
    (at most :data:`DRIFT_SERIES_MODELS`), and a deleted model's series go with it.
    Every API process reports the same numbers: take ``max`` over them.
    """

    def __init__(self, read: Callable[[int], dict[str, dict[str, float]]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "mlservice_feature_drift",
            "Population stability index of a model's input column: its latest drift "
            "computation against the training profile (over 0.2: drifted).",
            labels=["model_id", "feature"],
        )
        for model_id, features in sorted(self._read(DRIFT_SERIES_MODELS).items()):
            for feature, value in sorted(features.items()):
                family.add_metric([model_id, feature], value)
        yield family


# --- the multiprocess directory and the scrape --------------------------------------------


def multiprocess_directory() -> Path | None:
    """The directory every process writes its values to, ``None`` when not set."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def clear_directory(directory: Path) -> None:
    """Make ``directory`` and empty it of other processes' values, at the start of a service.

    Files left by an earlier run would add old counts to new ones. The
    calling process's own files stay: it may have written values already.
    """
    directory.mkdir(parents=True, exist_ok=True)
    own = f"_{os.getpid()}.db"
    for path in directory.glob("*.db"):
        if not path.name.endswith(own):
            path.unlink(missing_ok=True)


def process_exited(pid: int) -> None:
    """A process of the service exited: its values leave the live gauges (``livesum``)."""
    if multiprocess_directory() is not None:
        multiprocess.mark_process_dead(pid)


def registry() -> CollectorRegistry:
    """The registry a scrape reads: every process's values in multiprocess mode, else ours."""
    directory = multiprocess_directory()
    if directory is None:
        return REGISTRY
    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined, path=str(directory))
    return combined


def exposition(*extra: Collector) -> bytes:
    """The text a scrape gets: every process's metrics, then ``extra`` collectors' (read now)."""
    text = generate_latest(registry())
    if extra:
        more = CollectorRegistry()
        for collector in extra:
            more.register(collector)
        text += generate_latest(more)
    return text
