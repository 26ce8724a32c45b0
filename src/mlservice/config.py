"""Service configuration: read once, validated at start, overridable by environment.

Two files configure the service:

* ``src/config.properties`` (INI with sections): token lifetime, the default
  model and service settings. Path: ``MLSERVICE_CONFIG``.
* ``redis/config.properties`` (``KEY=VALUE`` lines): Redis host and the
  passwords of its ACL users. Path: ``MLSERVICE_REDIS_CONFIG``.

Every setting can be overridden by an environment variable, so one image
serves every environment (12-factor). Any problem raises :class:`ConfigError`
with one line naming the file, the key and what is allowed.
"""

from __future__ import annotations

import configparser
import functools
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping

#: Units accepted by ``[auth_info] expiry_time_unit``: the keyword arguments of
#: :class:`datetime.timedelta`.
TIME_UNITS = ("days", "seconds", "microseconds", "milliseconds", "minutes", "hours", "weeks")

#: Data sets the default model may be trained on; they ship with scikit-learn.
BUNDLED_DATASETS = ("iris", "wine", "breast_cancer")

SRC_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = SRC_DIR.parent
DEFAULT_CONFIG_PATH = SRC_DIR / "config.properties"
DEFAULT_REDIS_CONFIG_PATH = REPO_DIR / "redis" / "config.properties"

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ConfigError(Exception):
    """A configuration problem, phrased as one line for the operator."""


@dataclass(frozen=True)
class RedisSettings:
    """How to reach Redis, and as whom."""

    host: str
    port: int
    master_user: str
    master_password: str
    celery_user: str
    celery_password: str
    db: int = 0

    def url(self, user: str, password: str) -> str:
        """A ``redis://`` URL for one ACL user (passwords are URL-safe hex or validated)."""
        return f"redis://{user}:{password}@{self.host}:{self.port}/{self.db}"

    @property
    def app_url(self) -> str:
        return self.url(self.master_user, self.master_password)

    @property
    def celery_url(self) -> str:
        return self.url(self.celery_user, self.celery_password)


@dataclass(frozen=True)
class DefaultModelSettings:
    """The model ``/resource/init`` trains: a bundled data set and an estimator."""

    dataset: str = "iris"
    estimator: str = "LogisticRegression"
    params: Mapping[str, Any] = field(default_factory=dict)
    test_size: float = 0.25
    random_state: int = 0


@dataclass(frozen=True)
class InferenceSettings:
    """How trained models are served: compiled to ONNX, and batched when not."""

    #: Convert fitted pipelines to ONNX after training (served by ONNX Runtime
    #: when its predictions equal scikit-learn's on the held-out split).
    compile_onnx: bool = True
    #: scikit-learn path: most rows one grouped predict call takes.
    batch_max_rows: int = 256
    #: scikit-learn path: how long the first request waits for others (0: no wait).
    batch_max_wait: float = 0.002


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from configuration."""

    config_path: Path
    redis_config_path: Path
    token_lifetime: timedelta
    redis: RedisSettings
    default_model: DefaultModelSettings
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    artifact_dir: Path = REPO_DIR / "var" / "artifacts"
    max_upload_bytes: int = 20 * 1024**3
    delegated_auth_url: str | None = None
    callback_allow_private: bool = False
    secret_key: str | None = None
    init_timeout: float = 300.0
    task_time_limit: int = 3600
    admin_username: str | None = None
    admin_password: str | None = None


def token_lifetime(expiry: str, unit: str, source: str = "config.properties") -> timedelta:
    """Turn ``expiry`` × ``expiry_time_unit`` into a timedelta, or explain what is wrong."""
    unit = unit.strip().lower()
    if unit not in TIME_UNITS:
        raise ConfigError(
            f"{source}: [auth_info] expiry_time_unit = {unit!r} is not allowed; "
            f"use one of {', '.join(TIME_UNITS)}"
        )
    try:
        amount = float(expiry)
    except ValueError:
        raise ConfigError(
            f"{source}: [auth_info] expiry = {expiry!r} is not a number; use a positive number"
        ) from None
    if not amount > 0 or amount == float("inf"):
        raise ConfigError(f"{source}: [auth_info] expiry = {expiry!r} must be a positive number")
    return timedelta(**{unit: amount})


def _env(name: str, environ: Mapping[str, str]) -> str | None:
    """An environment override; empty values count as unset (Compose passes ``${X:-}``)."""
    value = environ.get(name, "").strip()
    return value or None


def _ini_value(
    parser: configparser.ConfigParser,
    section: str,
    key: str,
    environ: Mapping[str, str],
    default: str | None = None,
) -> str | None:
    """``[section] key`` with ``MLSERVICE_<SECTION>_<KEY>`` taking precedence."""
    override = _env(f"MLSERVICE_{section}_{key}".upper(), environ)
    if override is not None:
        return override
    value = parser.get(section, key, fallback=None)
    if value is None or not value.strip():
        return default
    return value.strip()


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


def _number(value: str, path: Path, where: str, kind: type, minimum: float) -> Any:
    try:
        number = kind(value)
    except ValueError:
        raise ConfigError(f"{path}: {where} = {value!r} is not a {kind.__name__}") from None
    if number < minimum:
        raise ConfigError(f"{path}: {where} = {value!r} must be at least {minimum}")
    return number


def _inference(parser: configparser.ConfigParser, path: Path, environ: Mapping[str, str]
               ) -> InferenceSettings:
    """Read ``[inference]``: ONNX compilation on or off, and the batching limits."""
    section = "inference"
    compile_onnx = _ini_value(parser, section, "compile_onnx", environ, "true").lower()
    if compile_onnx not in ("true", "false"):
        raise ConfigError(f"{path}: [inference] compile_onnx = {compile_onnx!r} is not "
                          "allowed; use true or false")
    max_wait_ms = _number(_ini_value(parser, section, "batch_max_wait_ms", environ, "2"),
                          path, "[inference] batch_max_wait_ms", float, 0)
    return InferenceSettings(
        compile_onnx=compile_onnx == "true",
        batch_max_rows=_number(_ini_value(parser, section, "batch_max_rows", environ, "256"),
                               path, "[inference] batch_max_rows", int, 1),
        batch_max_wait=max_wait_ms / 1000,
    )


def _default_model(
    parser: configparser.ConfigParser, path: Path, environ: Mapping[str, str]
) -> DefaultModelSettings:
    """Read ``[default_model]``; the estimator itself is checked by :mod:`mlservice.estimators`."""
    section = "default_model"
    dataset = _ini_value(parser, section, "dataset", environ, "iris")
    if dataset not in BUNDLED_DATASETS:
        raise ConfigError(
            f"{path}: [default_model] dataset = {dataset!r} is not allowed; "
            f"use one of {', '.join(BUNDLED_DATASETS)}"
        )
    estimator = _ini_value(parser, section, "estimator", environ, "LogisticRegression")
    raw_params = _ini_value(parser, section, "params", environ, "{}")
    try:
        params = json.loads(raw_params)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: [default_model] params is not valid JSON ({exc.msg}); "
            'use a JSON object such as {"max_iter": 500}'
        ) from None
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: [default_model] params must be a JSON object")
    test_size = _number(
        _ini_value(parser, section, "test_size", environ, "0.25"),
        path, "[default_model] test_size", float, 0.05,
    )
    if test_size >= 0.9:
        raise ConfigError(f"{path}: [default_model] test_size must be between 0.05 and 0.9")
    return DefaultModelSettings(
        dataset=dataset, estimator=estimator, params=params, test_size=test_size
    )


def read_properties(path: Path) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines (comments, blank lines and ``[section]`` headers ignored)."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: file not found; copy {path.name}.template or set MLSERVICE_REDIS_CONFIG"
        ) from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"{path}: line {number} is not KEY=VALUE: {line[:40]!r}")
        values[key.strip()] = value.strip()
    return values


def _redis_settings(path: Path, environ: Mapping[str, str]) -> RedisSettings:
    """Read redis/config.properties; ``MLSERVICE_REDIS_<KEY>`` overrides (leading REDIS_ dropped)."""
    values = read_properties(path)

    def get(key: str, default: str | None = None) -> str:
        env_name = "MLSERVICE_REDIS_" + key.removeprefix("REDIS_")
        value = _env(env_name, environ) or values.get(key) or default
        if not value:
            raise ConfigError(f"{path}: {key} is missing (or set {env_name})")
        return value

    users = {key: get(key, default) for key, default in
             (("MASTER_USER", None), ("CELERY_USER", "celery"))}
    for key, name in users.items():
        if not _NAME_RE.match(name) or name == "default":
            raise ConfigError(
                f"{path}: {key} = {name!r} is not allowed; use letters, digits, '_', '.', '-' "
                "and not 'default'"
            )
    passwords = {key: get(key) for key in ("REDIS_MASTER_PW", "REDIS_CELERY_PW")}
    for key, password in passwords.items():
        if not re.fullmatch(r"[A-Za-z0-9_.~-]{8,}", password):
            raise ConfigError(
                f"{path}: {key} must be at least 8 characters of letters, digits, '_', '.', '~', '-'"
            )
    port = _number(get("PORT", "6379"), path, "PORT", int, 1)
    return RedisSettings(
        host=get("HOST"),
        port=port,
        master_user=users["MASTER_USER"],
        master_password=passwords["REDIS_MASTER_PW"],
        celery_user=users["CELERY_USER"],
        celery_password=passwords["REDIS_CELERY_PW"],
    )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate both configuration files and the environment."""
    environ = os.environ if environ is None else environ
    path = Path(_env("MLSERVICE_CONFIG", environ) or DEFAULT_CONFIG_PATH)
    redis_path = Path(_env("MLSERVICE_REDIS_CONFIG", environ) or DEFAULT_REDIS_CONFIG_PATH)
    parser = _read_ini(path)
    if not parser.has_section("auth_info") and not _env("MLSERVICE_AUTH_INFO_EXPIRY", environ):
        raise ConfigError(f"{path}: section [auth_info] is missing (keys expiry, expiry_time_unit)")
    expiry = _ini_value(parser, "auth_info", "expiry", environ)
    unit = _ini_value(parser, "auth_info", "expiry_time_unit", environ)
    if expiry is None or unit is None:
        missing = "expiry" if expiry is None else "expiry_time_unit"
        raise ConfigError(f"{path}: [auth_info] {missing} is missing")
    secret_key = _ini_value(parser, "security", "secret_key", environ)
    if secret_key is not None and len(secret_key) < 32:
        raise ConfigError(f"{path}: [security] secret_key must be at least 32 characters "
                          "(or empty to have one generated)")
    service = "service"
    artifact_dir = Path(_ini_value(parser, service, "artifact_dir", environ, "")
                        or REPO_DIR / "var" / "artifacts")
    if not artifact_dir.is_absolute():
        artifact_dir = (path.parent / artifact_dir).resolve()
    delegate = _ini_value(parser, "auth_info", "delegate_url", environ)
    if delegate is not None and not delegate.startswith(("http://", "https://")):
        raise ConfigError(f"{path}: [auth_info] delegate_url = {delegate!r} must be an "
                          "http:// or https:// URL (or empty for local users)")
    return Settings(
        config_path=path,
        redis_config_path=redis_path,
        token_lifetime=token_lifetime(expiry, unit, str(path)),
        redis=_redis_settings(redis_path, environ),
        default_model=_default_model(parser, path, environ),
        inference=_inference(parser, path, environ),
        secret_key=secret_key,
        artifact_dir=artifact_dir,
        max_upload_bytes=_number(
            _ini_value(parser, service, "max_upload_mb", environ, "20480"),
            path, "[service] max_upload_mb", int, 1,
        ) * 1024**2,
        delegated_auth_url=delegate,
        callback_allow_private=_env("MLSERVICE_CALLBACK_ALLOW_PRIVATE", environ) in ("1", "true"),
        init_timeout=_number(
            _ini_value(parser, service, "init_timeout_seconds", environ, "300"),
            path, "[service] init_timeout_seconds", float, 1,
        ),
        task_time_limit=_number(
            _ini_value(parser, service, "task_time_limit_seconds", environ, "3600"),
            path, "[service] task_time_limit_seconds", int, 10,
        ),
        admin_username=_env("MLSERVICE_ADMIN_USERNAME", environ),
        admin_password=_env("MLSERVICE_ADMIN_PASSWORD", environ),
    )


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, loaded on first use from the environment."""
    return load_settings()


def ensure_config_file(path: Path = DEFAULT_CONFIG_PATH) -> bool:
    """Copy ``config.properties.template`` to ``path`` if it is missing; True if written."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEFAULT_CONFIG_PATH.with_name("config.properties.template"), path)
    return True
