"""Service configuration: every setting declared once, read once, validated at start.

Two files configure the service:

* ``src/config.properties`` (INI with sections): token lifetime, the default
  model, inference, storage, the Gunicorn API. Path: ``MLSERVICE_CONFIG``.
* ``redis/config.properties`` (``KEY=VALUE`` lines): Redis host and the
  passwords of its ACL users. Path: ``MLSERVICE_REDIS_CONFIG``.

Each setting is one field of a section dataclass below, declared with
:func:`option`: where it is read (section and key), its default as written
in the file, how it is checked, and the environment variable that overrides
it (``MLSERVICE_<SECTION>_<KEY>`` unless named otherwise), so one image serves
every environment (12-factor). The API, the Celery worker, Gunicorn
(``src/gunicorn.conf.py``) and ``make run`` all read this table. Any problem
raises :class:`ConfigError` with one line naming the file (or the
environment variable), the key and what is allowed.

Reading is strict: a section, key or ``MLSERVICE_*`` variable that is not
declared here is an error with a "did you mean", because a misspelled key
would otherwise pass silently and leave its default in force.

To add a setting: add a field with :func:`option` to its section's class,
and the key with its default to ``src/config.properties.template``
(a unit test checks that the two agree).
"""

from __future__ import annotations

import configparser
import difflib
import functools
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

#: Units accepted by ``[auth_info] expiry_time_unit``: the keyword arguments of
#: :class:`datetime.timedelta`.
TIME_UNITS = ("days", "seconds", "microseconds", "milliseconds", "minutes", "hours", "weeks")

#: Data sets the default model may be trained on; they ship with scikit-learn.
BUNDLED_DATASETS = ("iris", "wine", "breast_cancer")

#: The package lives in the repository's src/ (``pip install -e .``); natively,
#: configuration and run-time files default to places in the repository.
SRC_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = SRC_DIR.parent
DEFAULT_CONFIG_PATH = SRC_DIR / "config.properties"
DEFAULT_REDIS_CONFIG_PATH = REPO_DIR / "redis" / "config.properties"
TEMPLATE_PATH = SRC_DIR / "config.properties.template"
#: make run's run directory: logs, Redis's data, its state file (var/stack.json).
DEFAULT_RUN_DIR = REPO_DIR / "var"
DEFAULT_ARTIFACT_DIR = DEFAULT_RUN_DIR / "artifacts"
DEFAULT_OPENAPI_FILE = REPO_DIR / "ml-service.yml"

#: A web origin as browsers send it: scheme, host (name, IPv4 or [IPv6]) and optional port.
ORIGIN = re.compile(r"https?://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:[0-9]{1,5})?")

#: The "section" of settings read from redis/config.properties.
REDIS_FILE = "redis"

#: Keys of redis/config.properties that are no settings: the template's end marker.
REDIS_FILE_MARKERS = ("END_FILE",)

#: ``MLSERVICE_*`` environment variables that are not settings, and who reads them.
#: Anything else that looks like a setting (a section's prefix, or close to a
#: setting's variable) is refused, so a misspelled override cannot pass silently.
OTHER_ENVIRONMENT = {
    "MLSERVICE_CONFIG": "the path of src/config.properties",
    "MLSERVICE_REDIS_CONFIG": "the path of redis/config.properties",
    "MLSERVICE_LISTEN": "NGINX's listen address (nginx/render-listen.sh)",
    "MLSERVICE_LISTEN_CONF": "NGINX's rendered listen directive (nginx/)",
    "MLSERVICE_API_UPSTREAM": "NGINX's upstream, the API's address (nginx/)",
    "MLSERVICE_ARTIFACT_DIR": "where NGINX serves downloads from (nginx/)",
    "MLSERVICE_NGINX_SETTINGS": "NGINX's settings file (nginx/, src/docker-entrypoint.sh)",
    "MLSERVICE_ACCESS_LOG": "NGINX's access log (nginx/)",
    "MLSERVICE_PORT": "the host port Compose publishes NGINX on (docker-compose.yml)",
    "MLSERVICE_PROMETHEUS_PORT": "the host port of Compose's Prometheus (docker-compose.yml)",
    "MLSERVICE_COMPOSE": "the Compose command of make test-compose (Makefile)",
    "MLSERVICE_COMPOSE_PROJECT": "the Compose project of the scale-out tests (tests/compose)",
    "MLSERVICE_TEST_COMPOSE": "turns on the scale-out tests (Makefile, tests/compose)",
}


class ConfigError(Exception):
    """A configuration problem, phrased as one line for the operator."""


# --- checks: text from a file or the environment -> value, or ValueError(why) -----


def boolean(text: str) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``), in any case.

    The one reading of a boolean, for settings and query parameters alike.
    """
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ValueError("is not allowed; use true or false")


def integer(minimum: int) -> Callable[[str], int]:
    """A whole number of at least ``minimum``."""

    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError("is not an integer") from None
        if value < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value

    return check


def number(minimum: float, below: float | None = None) -> Callable[[str], float]:
    """A finite number of at least ``minimum`` (and under ``below``)."""

    def check(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError("is not a number") from None
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        if below is not None and not minimum <= value < below:
            raise ValueError(f"must be between {minimum} and {below}")
        if value < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value

    return check


def positive_number(text: str) -> float:
    """A finite number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError("is not a number; use a positive number") from None
    if not value > 0 or not math.isfinite(value):
        raise ValueError("must be a positive number")
    return value


def choice(*allowed: str) -> Callable[[str], str]:
    """One of ``allowed`` (compared in lower case)."""

    def check(text: str) -> str:
        value = text.strip().lower()
        if value not in allowed:
            raise ValueError(f"is not allowed; use one of {', '.join(allowed)}")
        return value

    return check


def text(value: str) -> str:
    """Any non-empty text."""
    return value


def json_object(value: str) -> dict[str, Any]:
    """A JSON object, such as estimator parameters."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f'is not valid JSON ({exc.msg}); use a JSON object such as {{"max_iter": 500}}'
        ) from None
    if not isinstance(parsed, dict):
        raise ValueError("must be a JSON object")
    return parsed


def http_url(value: str) -> str:
    """An ``http://`` or ``https://`` URL."""
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL (or empty for local users)")
    return value


def origin_list(value: str) -> tuple[str, ...]:
    """Web origins separated by spaces or commas (``scheme://host[:port]``), ``*`` for any,
    or ``none`` for no other origin than the service's own."""
    if value.strip().lower() == "none":
        return ()
    origins = tuple(part.lower().rstrip("/") for part in re.split(r"[\s,]+", value) if part)
    for origin in origins:
        if origin != "*" and not ORIGIN.fullmatch(origin):
            raise ValueError(
                f"has {origin!r}, which is not an origin; write scheme://host[:port] with no "
                "path (e.g. https://editor.swagger.io), separated by spaces, or * for any origin"
            )
    return origins


def public_url_list(value: str) -> tuple[str, ...]:
    """The service's own origins (``scheme://host[:port]``), separated by spaces or commas."""
    origins = tuple(part.lower().rstrip("/") for part in re.split(r"[\s,]+", value) if part)
    for origin in origins:
        if not ORIGIN.fullmatch(origin):
            raise ValueError(
                f"has {origin!r}, which is not an origin; write the addresses clients use as "
                "scheme://host[:port] with no path (e.g. https://ml.example.com), separated by "
                "spaces"
            )
    return origins


def readable_file(value: str) -> Path:
    """A file this process can read (a relative path: from the working directory)."""
    path = Path(value).expanduser()
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ValueError("is not a file this process can read")
    return path.resolve()


def secret_key(value: str) -> str:
    """A signing secret long enough to resist guessing."""
    if len(value) < 32:
        raise ValueError("must be at least 32 characters (or empty to have one generated)")
    return value


def redis_user(value: str) -> str:
    """A Redis ACL user name the ACL file can hold, never ``default``."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value) or value == "default":
        raise ValueError("is not allowed; use letters, digits, '_', '.', '-' and not 'default'")
    return value


def redis_password(value: str) -> str:
    """A password that is safe in a ``redis://`` URL and in the ACL file."""
    if not re.fullmatch(r"[A-Za-z0-9_.~-]{8,}", value):
        raise ValueError("must be at least 8 characters of letters, digits, '_', '.', '~', '-'")
    return value


# --- the declaration of one setting --------------------------------------------------


@dataclass(frozen=True)
class Option:
    """Where one setting is read, its default as the file would say it, and its check."""

    section: str
    key: str
    check: Callable[[str], Any]
    #: As written in the file; ``None``: required; ``""``: optional, ``None`` when unset.
    default: str | None
    env: str
    #: Never echo the value in an error message.
    secret: bool = False

    def where(self) -> str:
        """How an error message names the key."""
        return self.key if self.section == REDIS_FILE else f"[{self.section}] {self.key}"

    def parse(self, raw: str, source: Path | str) -> Any:
        """The checked value of ``raw`` (``None`` for an empty optional)."""
        if raw == "":
            return None
        try:
            return self.check(raw)
        except ValueError as exc:
            shown = "" if self.secret else f" = {raw!r}"
            raise ConfigError(f"{source}: {self.where()}{shown} {exc}") from None

    def parse_env(self, raw: str) -> Any:
        """The checked value of this setting's environment variable.

        An error names the variable, not the file: the file may well say
        something else, and the operator must know which one to fix.
        """
        try:
            return self.check(raw)
        except ValueError as exc:
            shown = "" if self.secret else f" = {raw!r}"
            raise ConfigError(
                f"environment variable {self.env}{shown} {exc} (it overrides {self.where()})"
            ) from None


def option(
    section: str,
    key: str,
    check: Callable[[str], Any],
    default: str | None = None,
    *,
    env: str | None = None,
    secret: bool = False,
) -> Any:
    """A settings field declared by where it is read, its default and its check."""
    declared = Option(
        section, key, check, default, env or f"MLSERVICE_{section}_{key}".upper(), secret
    )
    metadata = {"option": declared}
    if default is None:
        return field(metadata=metadata)
    # A factory, so a mutable default (a dict of params) is never shared between instances.
    return field(
        default_factory=functools.partial(declared.parse, default, "default"), metadata=metadata
    )


def redis_option(
    key: str, check: Callable[[str], Any], default: str | None = None, secret: bool = False
) -> Any:
    """A key of redis/config.properties; ``MLSERVICE_REDIS_<KEY>`` (REDIS_ dropped) overrides."""
    return option(
        REDIS_FILE,
        key,
        check,
        default,
        secret=secret,
        env="MLSERVICE_REDIS_" + key.removeprefix("REDIS_"),
    )


# --- the settings, one class per section --------------------------------------------


@dataclass(frozen=True)
class AuthSettings:
    """``[auth_info]``: bearer-token lifetime and delegated authentication."""

    expiry: float = option("auth_info", "expiry", positive_number)
    expiry_time_unit: str = option("auth_info", "expiry_time_unit", choice(*TIME_UNITS))
    #: Forward Basic credentials here instead of checking local users (a data server).
    delegate_url: str | None = option("auth_info", "delegate_url", http_url, "")

    @property
    def token_lifetime(self) -> timedelta:
        return timedelta(**{self.expiry_time_unit: self.expiry})


@dataclass(frozen=True)
class SecuritySettings:
    """``[security]``: the secret that signs tokens and bundles (empty: generated, in Redis)."""

    secret_key: str | None = option("security", "secret_key", secret_key, "", secret=True)


@dataclass(frozen=True)
class DefaultModelSettings:
    """``[default_model]``: what ``/resource/init`` trains, a bundled data set and an estimator.

    The estimator and its parameters are checked by :mod:`mlservice.preflight`.
    """

    dataset: str = option("default_model", "dataset", choice(*BUNDLED_DATASETS), "iris")
    estimator: str = option("default_model", "estimator", text, "LogisticRegression")
    params: dict[str, Any] = option("default_model", "params", json_object, '{"max_iter": 500}')
    test_size: float = option("default_model", "test_size", number(0.05, below=0.9), "0.25")
    random_state: int = option("default_model", "random_state", integer(0), "0")


@dataclass(frozen=True)
class InferenceSettings:
    """``[inference]``: compiled to ONNX after training, and batched when not."""

    #: Serve by ONNX Runtime when its predictions equal scikit-learn's on the held-out split.
    compile_onnx: bool = option("inference", "compile_onnx", boolean, "true")
    #: scikit-learn path: most rows one grouped predict call takes.
    batch_max_rows: int = option("inference", "batch_max_rows", integer(1), "256")
    #: scikit-learn path: how long the first request waits for others (0: no wait).
    batch_max_wait_ms: float = option("inference", "batch_max_wait_ms", number(0), "2")
    #: Batch scoring of a stored data set: rows read, predicted and written at a time.
    scoring_chunk_rows: int = option("inference", "scoring_chunk_rows", integer(1), "65536")
    #: Each API worker's model cache holds at most this much; least recently used go first.
    model_cache_mb: float = option("inference", "model_cache_mb", number(1), "512")
    #: Each API worker's threads answering copies of requests for shadow versions.
    shadow_threads: int = option("inference", "shadow_threads", integer(1), "1")
    #: Copies waiting for a shadow thread, at most; more are dropped (and counted).
    shadow_queue: int = option("inference", "shadow_queue", integer(0), "64")


@dataclass(frozen=True)
class ServiceSettings:
    """``[service]``: storage, limits and time limits."""

    #: Data set and bundle files (relative: to the config file; empty: var/artifacts).
    artifact_dir: Path | None = option("service", "artifact_dir", Path, "")
    #: Artifact files 0644 and directories 0755, for an NGINX that runs as another user
    #: (Docker Compose sets it); false: 0600 and 0700, the service's user alone.
    artifacts_world_readable: bool = option("service", "artifacts_world_readable", boolean, "false")
    max_upload_mb: int = option("service", "max_upload_mb", integer(1), "20480")
    #: Uploads up to this size are profiled in the request (201); larger ones by a Celery
    #: task after a 202 (0: every upload).
    inline_profile_mb: int = option("service", "inline_profile_mb", integer(0), "16")
    #: How long a synchronous GET /resource/init waits before answering 504.
    init_timeout_seconds: float = option("service", "init_timeout_seconds", number(1), "120")
    task_time_limit_seconds: int = option("service", "task_time_limit_seconds", integer(10), "3600")
    #: Times a model's training may start before it is failed: each start after the first
    #: follows a run whose worker died (killed, out of memory, stopped without finishing).
    max_training_deliveries: int = option("service", "max_training_deliveries", integer(1), "3")
    #: Times a scoring or profiling job may start before it is failed (as for training).
    max_job_deliveries: int = option("service", "max_job_deliveries", integer(1), "3")
    #: Allow training callbacks to private and loopback addresses (tests, closed networks).
    callback_allow_private: bool = option(
        "service",
        "callback_allow_private",
        boolean,
        "false",
        env="MLSERVICE_CALLBACK_ALLOW_PRIVATE",
    )

    #: CSV downloads: text cells starting with = + - @ (spreadsheet formulas) get a leading '.
    csv_formula_escape: bool = option("service", "csv_formula_escape", boolean, "true")

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024**2

    @property
    def inline_profile_bytes(self) -> int:
        return self.inline_profile_mb * 1024**2


@dataclass(frozen=True)
class LimitsSettings:
    """``[limits]``: how much work one request may ask for; a refusal names the key."""

    #: Largest JSON body (predict, training, users), checked from Content-Length first.
    max_json_mb: float = option("limits", "max_json_mb", number(0.001), "32")
    #: Deepest nesting of arrays and objects in a JSON body.
    max_json_depth: int = option("limits", "max_json_depth", integer(2), "32")
    #: What one prediction body, one chunk of a scoring job or one step of reading a stored
    #: data set may become in memory (MiB): rows x 8 bytes per encoded feature, plus each text
    #: value's bytes in every row that holds it; counted from metadata before it is read.
    max_decoded_mb: float = option("limits", "max_decoded_mb", number(1), "64")
    #: What a data set may become in memory when it is loaded whole for training (MiB).
    max_training_mb: float = option("limits", "max_training_mb", number(1), "4096")
    #: Most columns of an uploaded data set or a CSV prediction body (checked from the header).
    max_columns: int = option("limits", "max_columns", integer(1), "2000")
    #: Largest n_estimators (forests, boosting, bagging) a training request may ask for.
    max_n_estimators: int = option("limits", "max_n_estimators", integer(1), "2000")
    #: Largest max_iter (linear models, SVMs, MLPs) a training request may ask for.
    max_iter: int = option("limits", "max_iter", integer(1), "100000")
    #: Wrong passwords for one account from one client address within
    #: failed_login_window_seconds before that address must wait (others need not).
    max_failed_logins: int = option("limits", "max_failed_logins", integer(1), "10")
    failed_login_window_seconds: int = option(
        "limits", "failed_login_window_seconds", integer(1), "60"
    )
    #: Wrong passwords for one account from any addresses within
    #: account_failed_login_window_seconds before every address must wait (spraying).
    max_account_failed_logins: int = option(
        "limits", "max_account_failed_logins", integer(1), "100"
    )
    account_failed_login_window_seconds: int = option(
        "limits", "account_failed_login_window_seconds", integer(1), "300"
    )
    #: Wrong passwords from one address for any names within failed_login_window_seconds
    #: before that address must wait (spraying names, each a password hash).
    max_address_failed_logins: int = option("limits", "max_address_failed_logins", integer(1), "50")
    #: Password hashes (each tens of ms of CPU and 32 MiB) one API process computes at once...
    password_hashes_at_once: int = option("limits", "password_hashes_at_once", integer(1), "1")
    #: ... and how many more may wait for one; any beyond are refused at once (429). Together
    #: below [api] threads, so each API worker always has a thread for predictions.
    password_hashes_queued: int = option("limits", "password_hashes_queued", integer(0), "0")
    #: Connections one client address may hold open through NGINX at once (429 beyond).
    connections_per_address: int = option("limits", "connections_per_address", integer(1), "100")
    #: NGINX's wait for a client: for its headers, between two reads of its body, between
    #: two writes of the answer; a client silent that long is disconnected.
    client_timeout_seconds: int = option("limits", "client_timeout_seconds", integer(1), "30")

    @property
    def max_decoded_bytes(self) -> int:
        return int(self.max_decoded_mb * 1024**2)

    @property
    def max_training_bytes(self) -> int:
        return int(self.max_training_mb * 1024**2)


@dataclass(frozen=True)
class SearchSettings:
    """``[search]``: hyperparameter searches, their trials spread over every Celery worker."""

    #: Trials of one search queued or running at once (more workers run more of them).
    max_parallel_trials: int = option("search", "max_parallel_trials", integer(1), "16")
    #: Most trials one search may ask for (``max_trials``, a grid's size).
    max_trials: int = option("search", "max_trials", integer(1), "1000")
    #: Longest time budget a search may ask for (``time_budget_s``).
    max_time_budget_seconds: float = option("search", "max_time_budget_seconds", number(1), "86400")
    #: One trial's time limit (a request may ask for less): it is stopped and recorded
    #: failed past it. Its process is killed this many seconds after, if it does not stop.
    trial_time_limit_seconds: float = option("search", "trial_time_limit_seconds", number(1), "600")
    #: Times one trial may start before it is failed: each start after the first follows
    #: a run whose worker died.
    max_trial_deliveries: int = option("search", "max_trial_deliveries", integer(1), "3")


@dataclass(frozen=True)
class MonitoringSettings:
    """``[monitoring]``: the prediction log, input drift and explanations (docs/monitoring.md)."""

    #: Rows a model's prediction log keeps; past it, its oldest files are dropped.
    log_max_rows: int = option("monitoring", "log_max_rows", integer(1), "1000000")
    #: Days a model's prediction log keeps a file (by its newest row).
    log_max_days: float = option("monitoring", "log_max_days", number(0.001), "30")
    #: Seconds between flushes of the buffered rows (Redis) into Parquet files (celery beat).
    flush_seconds: float = option("monitoring", "flush_seconds", number(1), "5")
    #: Unflushed requests one model's buffer holds in Redis; past it, the oldest go.
    buffer_max_requests: int = option("monitoring", "buffer_max_requests", integer(1), "100000")
    #: Requests an API worker holds for its writer thread; past it, rows are dropped (counted).
    pending_max_requests: int = option("monitoring", "pending_max_requests", integer(1), "10000")
    #: With the log off, one request in this many is kept as a drift sample (0: none).
    sample_every: int = option("monitoring", "sample_every", integer(0), "10")
    #: Sampled requests kept per model (the newest).
    sample_max_requests: int = option("monitoring", "sample_max_requests", integer(1), "10000")
    #: Rows drift compares when the request names no window, and the most it may name.
    drift_window: int = option("monitoring", "drift_window", integer(1), "2000")
    drift_max_window: int = option("monitoring", "drift_max_window", integer(1), "100000")
    #: A column drifted: its PSI above this, or its missing rate moved by more than that.
    drift_psi_threshold: float = option("monitoring", "drift_psi_threshold", number(0), "0.2")
    drift_missing_threshold: float = option(
        "monitoring", "drift_missing_threshold", number(0), "0.1"
    )
    #: Rows one explanation request may send.
    explain_max_rows: int = option("monitoring", "explain_max_rows", integer(1), "100")
    #: Seconds an explanation request waits for its worker before answering 202 (follow it).
    explain_wait_seconds: float = option("monitoring", "explain_wait_seconds", number(0), "30")


@dataclass(frozen=True)
class ApiSettings:
    """``[api]``: the Gunicorn server of the HTTP API (read by src/gunicorn.conf.py)."""

    bind: str = option("api", "bind", text, "127.0.0.1:8000", env="MLSERVICE_BIND")
    #: Empty: CPUs + 1 (measured with make bench-gunicorn; see src/gunicorn.conf.py).
    workers: int | None = option("api", "workers", integer(1), "", env="MLSERVICE_WORKERS")
    threads: int = option("api", "threads", integer(1), "2", env="MLSERVICE_THREADS")
    #: gthread: long requests (uploads, a synchronous init) never stall the worker's
    #: heartbeat; sync: faster single-row predictions, but a request longer than
    #: ``timeout`` is killed and each one holds a whole worker.
    worker_class: str = option(
        "api", "worker_class", choice("gthread", "sync"), "gthread", env="MLSERVICE_WORKER_CLASS"
    )
    #: Seconds before a silent worker is restarted; empty: init_timeout_seconds + 30.
    timeout: int | None = option("api", "timeout", integer(1), "", env="MLSERVICE_TIMEOUT")
    log_level: str = option(
        "api",
        "log_level",
        choice("debug", "info", "warning", "error", "critical"),
        "info",
        env="MLSERVICE_LOG_LEVEL",
    )
    #: The contract served at /openapi.yaml and /docs; empty: ml-service.yml in the repository.
    openapi_file: Path | None = option(
        "api", "openapi_file", Path, "", env="MLSERVICE_OPENAPI_FILE"
    )
    #: The origins clients reach the service at (``scheme://host[:port]``): the served
    #: contract names the one it was asked from first; any other Host gets the file's servers.
    public_urls: tuple[str, ...] | None = option("api", "public_urls", public_url_list, "")


@dataclass(frozen=True)
class CorsSettings:
    """``[cors]``: other web origins whose pages may call the API (NGINX sends the headers).

    The service's own origin is always allowed. Browsers never send cookies or
    credentials by themselves: pages authenticate with bearer tokens.
    """

    #: ``none``: the service's own origin only.
    allowed_origins: tuple[str, ...] = option(
        "cors",
        "allowed_origins",
        origin_list,
        "https://editor.swagger.io https://editor-next.swagger.io",
    )


@dataclass(frozen=True)
class MetricsSettings:
    """``[metrics]``: Prometheus metrics of the Celery worker (the API serves /metrics itself).

    The worker's main process serves every pool process's metrics on this
    address; NGINX never exposes it.
    """

    #: Port of the Celery worker's metrics (0: not served).
    worker_port: int = option("metrics", "worker_port", integer(0), "9808")
    #: Address it listens on (0.0.0.0 in a container, for Prometheus on another host).
    worker_host: str = option("metrics", "worker_host", text, "127.0.0.1")


@dataclass(frozen=True)
class LoggingSettings:
    """``[logging]``: how the API, the Celery worker and beat write their log lines."""

    #: json (one object per line, for log collectors) or text (for a terminal).
    format: str = option("logging", "format", choice("json", "text"), "json")


@dataclass(frozen=True)
class TlsSettings:
    """``[tls]``: the certificate and key NGINX serves HTTPS with under ``make run``.

    Both or neither (plain HTTP, for local use only). In Compose, NGINX's own
    container reads MLSERVICE_TLS_CERT and MLSERVICE_TLS_KEY instead.
    """

    #: The certificate chain (PEM).
    cert: Path | None = option("tls", "cert", readable_file, "")
    #: Its private key (PEM).
    key: Path | None = option("tls", "key", readable_file, "")

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ValueError(
                "[tls] cert and key go together: set both (MLSERVICE_TLS_CERT and "
                "MLSERVICE_TLS_KEY), or neither for plain HTTP"
            )


@dataclass(frozen=True)
class AdminSettings:
    """``[admin]``: the admin account made sure of at start (empty: one generated, printed once)."""

    username: str | None = option("admin", "username", text, "")
    password: str | None = option("admin", "password", text, "", secret=True)


@dataclass(frozen=True)
class RedisSettings:
    """redis/config.properties: how to reach Redis, and as whom."""

    host: str = redis_option("HOST", text)
    master_user: str = redis_option("MASTER_USER", redis_user)
    master_password: str = redis_option("REDIS_MASTER_PW", redis_password, secret=True)
    celery_password: str = redis_option("REDIS_CELERY_PW", redis_password, secret=True)
    port: int = redis_option("PORT", integer(1), "6379")
    celery_user: str = redis_option("CELERY_USER", redis_user, "celery")

    def url(self, user: str, password: str) -> str:
        """A ``redis://`` URL for one ACL user (passwords are checked URL-safe)."""
        return f"redis://{user}:{password}@{self.host}:{self.port}/0"

    @property
    def app_url(self) -> str:
        return self.url(self.master_user, self.master_password)

    @property
    def celery_url(self) -> str:
        return self.url(self.celery_user, self.celery_password)


#: Every section of src/config.properties, in the template's order.
SECTIONS: dict[str, type] = {
    "auth_info": AuthSettings,
    "security": SecuritySettings,
    "default_model": DefaultModelSettings,
    "inference": InferenceSettings,
    "service": ServiceSettings,
    "limits": LimitsSettings,
    "search": SearchSettings,
    "monitoring": MonitoringSettings,
    "api": ApiSettings,
    "cors": CorsSettings,
    "metrics": MetricsSettings,
    "logging": LoggingSettings,
    "tls": TlsSettings,
    "admin": AdminSettings,
}


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from configuration."""

    config_path: Path
    redis_config_path: Path
    auth: AuthSettings
    security: SecuritySettings
    default_model: DefaultModelSettings
    inference: InferenceSettings
    service: ServiceSettings
    limits: LimitsSettings
    search: SearchSettings
    api: ApiSettings
    cors: CorsSettings
    metrics: MetricsSettings
    logging: LoggingSettings
    tls: TlsSettings
    admin: AdminSettings
    redis: RedisSettings
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)

    @property
    def artifact_dir(self) -> Path:
        """Where data sets and bundles live (made absolute when the settings are loaded)."""
        return self.service.artifact_dir or DEFAULT_ARTIFACT_DIR

    @property
    def openapi_file(self) -> Path:
        """The OpenAPI document the service serves (ml-service.yml unless set)."""
        return self.api.openapi_file or DEFAULT_OPENAPI_FILE


def options(section_class: type) -> list[tuple[str, Option]]:
    """The declared settings of one section class: (field name, declaration)."""
    return [(f.name, f.metadata["option"]) for f in fields(section_class)]


# --- reading ---------------------------------------------------------------------------

S = TypeVar("S")


def _env(name: str, environ: Mapping[str, str]) -> str | None:
    """An environment override; empty values count as unset (Compose passes ``${X:-}``)."""
    value = environ.get(name, "").strip()
    return value or None


def _read_section(
    section_class: type[S],
    values: Mapping[str, str],
    environ: Mapping[str, str],
    source: Path,
    section_present: bool = True,
) -> S:
    """One section's settings from the file's ``values``, overridden by the environment."""
    read: dict[str, Any] = {}
    for name, declared in options(section_class):
        raw = _env(declared.env, environ)
        if raw is not None:
            read[name] = declared.parse_env(raw)
            continue
        raw = values.get(declared.key, "").strip() or declared.default
        if raw is None:
            if not section_present:
                required = [o.key for _, o in options(section_class) if o.default is None]
                raise ConfigError(
                    f"{source}: section [{declared.section}] is missing "
                    f"(keys {', '.join(required)})"
                )
            hint = f" (or set {declared.env})" if declared.section == REDIS_FILE else ""
            raise ConfigError(f"{source}: {declared.where()} is missing{hint}")
        read[name] = declared.parse(raw, source)
    try:  # a section whose keys go together checks them in its __post_init__
        return section_class(**read)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _read_ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: file not found; copy {path.name}.template or set MLSERVICE_CONFIG"
        ) from None
    except (configparser.Error, UnicodeDecodeError) as exc:
        first_line = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: cannot be parsed as an INI file: {first_line}") from None
    return parser


def _did_you_mean(name: str, known: list[str], cutoff: float = 0.6) -> str:
    """``; did you mean X?`` naming the closest of ``known``, or nothing when none is close."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=cutoff)
    return f"; did you mean {close[0]}?" if close else ""


#: Settings that were removed, and what to do about a file that still has one.
REMOVED: dict[tuple[str, str], str] = {
    ("inference", "freshness_ms"): (
        "was removed: every API worker now hears of a changed user or model from Redis at "
        "once (see docs/architecture.md), so there is no delay to set; delete the line"
    ),
}


def _declared_keys(section_class: type) -> list[str]:
    return [declared.key for _, declared in options(section_class)]


def _check_known_keys(parser: configparser.ConfigParser, path: Path) -> None:
    """Every section and key of src/config.properties is declared.

    An unknown one is a typo (``[servce]``, ``max_uplod_mb``) whose setting
    would silently keep its default: refused, naming the closest declared name.
    """
    if parser.defaults():
        raise ConfigError(
            f"{path}: section [{parser.default_section}] is not used by ML Service; "
            "move its keys into their sections"
        )
    for section in parser.sections():
        if section not in SECTIONS:
            close = difflib.get_close_matches(section, list(SECTIONS), n=1)
            hint = f"did you mean [{close[0]}]?" if close else f"sections: {', '.join(SECTIONS)}"
            raise ConfigError(f"{path}: section [{section}] is not known; {hint}")
        declared = _declared_keys(SECTIONS[section])
        for key in parser.options(section):
            if key in declared:
                continue
            if (section, key) in REMOVED:
                raise ConfigError(f"{path}: [{section}] {key} {REMOVED[section, key]}")
            owner = next((n for n, cls in SECTIONS.items() if key in _declared_keys(cls)), None)
            hint = (
                f"; it belongs in [{owner}]"
                if owner
                else _did_you_mean(key, declared) or f"; [{section}] has {', '.join(declared)}"
            )
            raise ConfigError(f"{path}: [{section}] {key} is not a setting{hint}")


def _check_redis_keys(values: Mapping[str, str], path: Path) -> None:
    """Every key of redis/config.properties is declared (or the template's end marker)."""
    known = _declared_keys(RedisSettings) + list(REDIS_FILE_MARKERS)
    for key in values:
        if key not in known:
            hint = _did_you_mean(key, known) or f"; its keys are {', '.join(known)}"
            raise ConfigError(f"{path}: {key} is not a setting{hint}")


def check_environment(environ: Mapping[str, str]) -> None:
    """No ``MLSERVICE_*`` variable that looks like a setting is unknown.

    Looks like a setting: it starts with a section's prefix
    (``MLSERVICE_SERVICE_``, ``MLSERVICE_REDIS_``, ...) or is close to a
    setting's variable (a lost S of ``MLSERVICE_WORKERS``). Variables other
    parts read (:data:`OTHER_ENVIRONMENT`) pass; so do empty ones (unset, to
    the service). Other names are none of the service's business.
    """
    declared = [o.env for cls in (*SECTIONS.values(), RedisSettings) for _, o in options(cls)]
    known = sorted({*declared, *OTHER_ENVIRONMENT})
    prefixes = tuple(f"MLSERVICE_{section.upper()}_" for section in (*SECTIONS, REDIS_FILE))
    for name in sorted(environ):
        if not name.startswith("MLSERVICE_") or name in known or not environ[name].strip():
            continue
        hint = _did_you_mean(name, known, cutoff=0.85)
        if not hint and not name.startswith(prefixes):
            continue
        hint = (
            hint or "; settings are MLSERVICE_<SECTION>_<KEY> (see src/config.properties.template)"
        )
        raise ConfigError(f"environment variable {name} is not a setting{hint}")


def read_properties(path: Path) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines (comments, blank lines and ``[section]`` headers ignored)."""
    values: dict[str, str] = {}
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: file not found; copy {path.name}.template or set MLSERVICE_REDIS_CONFIG"
        ) from None
    for number_, raw in enumerate(content.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"{path}: line {number_} is not KEY=VALUE: {line[:40]!r}")
        values[key.strip()] = value.strip()
    return values


def token_lifetime(expiry: str, unit: str, source: str = "config.properties") -> timedelta:
    """Turn ``expiry`` x ``expiry_time_unit`` into a timedelta, or explain what is wrong."""
    values = {"expiry": expiry, "expiry_time_unit": unit}
    return _read_section(AuthSettings, values, {}, Path(source)).token_lifetime


def _config_path(environ: Mapping[str, str]) -> Path:
    return Path(_env("MLSERVICE_CONFIG", environ) or DEFAULT_CONFIG_PATH)


def _section(
    parser: configparser.ConfigParser,
    section_class: type[S],
    environ: Mapping[str, str],
    path: Path,
) -> S:
    """One section of the parsed src/config.properties, with the environment's overrides."""
    name = next(name for name, cls in SECTIONS.items() if cls is section_class)
    present = parser.has_section(name)
    values = dict(parser.items(name)) if present else {}
    return _read_section(section_class, values, environ, path, present)


def load_section(section_class: type[S], environ: Mapping[str, str] | None = None) -> S:
    """One section of src/config.properties alone (e.g. before Redis's config exists)."""
    environ = os.environ if environ is None else environ
    path = _config_path(environ)
    parser = _read_ini(path)
    _check_known_keys(parser, path)
    check_environment(environ)
    return _section(parser, section_class, environ, path)


def _resolve_artifact_dir(service: ServiceSettings, config_path: Path) -> ServiceSettings:
    """Relative artifact directories are relative to the config file; empty: var/artifacts."""
    directory = service.artifact_dir or DEFAULT_ARTIFACT_DIR
    if not directory.is_absolute():
        directory = (config_path.parent / directory).resolve()
    return replace(service, artifact_dir=directory)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate both configuration files and the environment."""
    environ = os.environ if environ is None else environ
    path = _config_path(environ)
    redis_path = Path(_env("MLSERVICE_REDIS_CONFIG", environ) or DEFAULT_REDIS_CONFIG_PATH)
    parser = _read_ini(path)
    _check_known_keys(parser, path)
    redis_values = read_properties(redis_path)
    _check_redis_keys(redis_values, redis_path)
    check_environment(environ)
    auth = _section(parser, AuthSettings, environ, path)
    try:
        auth.token_lifetime  # noqa: B018 - checked here: huge values overflow timedelta
    except OverflowError:
        raise ConfigError(
            f"{path}: [auth_info] expiry = {auth.expiry!r} {auth.expiry_time_unit} is too long"
        ) from None
    return Settings(
        config_path=path,
        redis_config_path=redis_path,
        auth=auth,
        security=_section(parser, SecuritySettings, environ, path),
        default_model=_section(parser, DefaultModelSettings, environ, path),
        inference=_section(parser, InferenceSettings, environ, path),
        service=_resolve_artifact_dir(_section(parser, ServiceSettings, environ, path), path),
        limits=_section(parser, LimitsSettings, environ, path),
        search=_section(parser, SearchSettings, environ, path),
        api=_section(parser, ApiSettings, environ, path),
        cors=_section(parser, CorsSettings, environ, path),
        metrics=_section(parser, MetricsSettings, environ, path),
        logging=_section(parser, LoggingSettings, environ, path),
        tls=_section(parser, TlsSettings, environ, path),
        admin=_section(parser, AdminSettings, environ, path),
        redis=_read_section(RedisSettings, redis_values, environ, redis_path),
        monitoring=_section(parser, MonitoringSettings, environ, path),
    )


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, loaded on first use from the environment."""
    return load_settings()


def ensure_config_file(path: Path = DEFAULT_CONFIG_PATH) -> bool:
    """Copy ``config.properties.template`` to ``path`` if it is missing; True if written.

    The copy is 0600 from its first byte: it will hold secrets (``[security]
    secret_key``, ``[admin] password``).
    """
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as copy:
        copy.write(TEMPLATE_PATH.read_bytes())
    return True
