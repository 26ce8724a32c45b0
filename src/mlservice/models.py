"""Trained models: requests validated up front, training, bundles, import and delete.

A model's life: ``queued`` (request accepted, task enqueued) → ``training``
(a Celery worker fits it) → ``ready`` (bundle written to the artifact store
and published to the Redis model cache) or ``failed`` (with the error).
Everything a request can get wrong is checked before it is accepted, so the
client hears about it at once rather than from a failed task.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Mapping

import redis

from . import bundles, datasets, estimators, model_store, training
from .bundles import ModelBundle
from .catalog import Catalog
from .redis_client import key
from .estimators import CLASSIFICATION, EstimatorError
from .security import Identity
from .storage import ArtifactStore

BUNDLE_FILENAME = "model.mlbundle"
MAX_CLASSES = 1000
#: A float target with more distinct values than this is taken as continuous.
MAX_FLOAT_CLASSES = 50
NUMERIC_DTYPES = ("integer", "float")


class ModelRequestError(ValueError):
    """A training request that cannot be accepted; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class TrainingRequest:
    """A validated ``POST /resource/models`` body."""

    dataset_id: str
    target: str
    estimator: str
    params: dict[str, Any] = field(default_factory=dict)
    features: list[str] | None = None
    test_size: float = 0.25
    cv: int | None = None
    callback_url: str | None = None
    callback_secret: str | None = None
    name: str | None = None
    #: Convert to ONNX after training (when the service's [inference] compile_onnx allows).
    compile: bool = True


def _require(body: Mapping[str, Any], name: str, kind: type) -> Any:
    if name not in body:
        raise ModelRequestError(f"{name!r} is required", status=400)
    value = body[name]
    if not isinstance(value, kind):
        raise ModelRequestError(f"{name!r} must be a {kind.__name__}", status=400)
    return value


def parse_request(body: Any) -> TrainingRequest:
    """Check the body's shape and types (400) before its meaning is checked."""
    if not isinstance(body, dict):
        raise ModelRequestError("send a JSON object: {dataset_id, target, estimator, params}", 400)
    known = set(TrainingRequest.__dataclass_fields__)
    unknown = sorted(set(body) - known)
    if unknown:
        raise ModelRequestError(f"unknown field(s) {', '.join(unknown)}; known: "
                                f"{', '.join(sorted(known))}", status=400)
    request = TrainingRequest(
        dataset_id=_require(body, "dataset_id", str),
        target=_require(body, "target", str),
        estimator=_require(body, "estimator", str),
        params=body.get("params") or {},
        features=body.get("features"),
        test_size=body.get("test_size", 0.25),
        cv=body.get("cv"),
        callback_url=body.get("callback_url"),
        callback_secret=body.get("callback_secret"),
        name=body.get("name"),
        compile=body.get("compile", True),
    )
    if not isinstance(request.params, dict):
        raise ModelRequestError("'params' must be a JSON object", status=400)
    if request.features is not None and (
            not isinstance(request.features, list)
            or not all(isinstance(f, str) for f in request.features) or not request.features):
        raise ModelRequestError("'features' must be a non-empty list of column names", 400)
    if isinstance(request.test_size, bool) or not isinstance(request.test_size, (int, float)) \
            or not 0.05 <= request.test_size <= 0.5:
        raise ModelRequestError("'test_size' must be a number between 0.05 and 0.5")
    if request.cv is not None and (isinstance(request.cv, bool) or not isinstance(request.cv, int)
                                   or not 2 <= request.cv <= 20):
        raise ModelRequestError("'cv' must be an integer between 2 and 20 (folds)")
    if request.callback_url is not None and (
            not isinstance(request.callback_secret, str)
            or not 16 <= len(request.callback_secret) <= 256):
        raise ModelRequestError(
            "'callback_secret' (16 to 256 characters) is required with 'callback_url': the "
            "callback is signed with it so your receiver can check it came from this service")
    if request.callback_url is None and request.callback_secret is not None:
        raise ModelRequestError("'callback_secret' needs a 'callback_url'")
    if not isinstance(request.compile, bool):
        raise ModelRequestError("'compile' must be true or false", 400)
    if request.name is not None and (not isinstance(request.name, str) or len(request.name) > 200):
        raise ModelRequestError("'name' must be a string of at most 200 characters", 400)
    return request


def check_against_dataset(request: TrainingRequest, dataset: dict[str, Any]) -> None:
    """Estimator, parameters, target and features must fit the data set."""
    try:
        estimators.make_estimator(request.estimator, request.params)
    except EstimatorError as exc:
        raise ModelRequestError(str(exc)) from None
    columns = {column["name"]: column for column in dataset["columns"]}
    if request.target not in columns:
        raise ModelRequestError(f"target {request.target!r} is not a column of the data set; "
                                f"columns: {', '.join(columns)}")
    features = request.features or [name for name in columns if name != request.target]
    missing = [name for name in features if name not in columns]
    if missing:
        raise ModelRequestError(f"feature column(s) {', '.join(map(repr, missing))} are not in "
                                "the data set")
    if request.target in features:
        raise ModelRequestError(f"the target {request.target!r} cannot also be a feature")
    if not features:
        raise ModelRequestError("the data set has no feature columns besides the target")
    target = columns[request.target]
    task = estimators.task_of(request.estimator)
    if task == CLASSIFICATION:
        if target["distinct"] < 2:
            raise ModelRequestError(f"target {request.target!r} has fewer than 2 classes")
        too_many = MAX_FLOAT_CLASSES if target["dtype"] == "float" else MAX_CLASSES
        if target["distinct_is_lower_bound"] or target["distinct"] > too_many:
            raise ModelRequestError(
                f"target {request.target!r} has more than {too_many} distinct values: "
                f"{request.estimator} is a classifier; use a regressor")
    elif target["dtype"] not in NUMERIC_DTYPES:
        raise ModelRequestError(f"target {request.target!r} is {target['dtype']}, but "
                                f"{request.estimator} is a regressor and needs numbers")
    if dataset["rows"] - target["missing"] < 10:
        raise ModelRequestError("the data set needs at least 10 rows with a target value")


def _record_from_bundle(bundle: ModelBundle) -> dict[str, Any]:
    described = bundle.describe()
    return {key: described[key] for key in
            ("task", "estimator", "params", "target", "classes", "input_schema", "metrics",
             "versions", "training_seconds", "engine")}


class Models:
    """Model records, bundle files and the Redis model cache, kept in step."""

    KIND = "models"

    def __init__(self, catalog: Catalog, artifacts: ArtifactStore, store: redis.Redis,
                 secret: str) -> None:
        self.catalog = catalog
        self.artifacts = artifacts
        self.store = store
        self.secret = secret

    def create(self, request: TrainingRequest, owner: Identity, task_id: str) -> dict[str, Any]:
        """Record an accepted request as ``queued``, trained by Celery task ``task_id``."""
        model_id = Catalog.new_id()
        record = self.catalog.create({
            "id": model_id,
            "task_id": task_id,
            "name": request.name or f"{request.estimator} on {request.target}",
            "owner": owner.username,
            "status": "queued",
            "source": "trained",
            "dataset_id": request.dataset_id,
            "target": request.target,
            "features": request.features,
            "estimator": request.estimator,
            "task": estimators.task_of(request.estimator),
            "params": request.params,
            "test_size": request.test_size,
            "cv": request.cv,
            "callback_url": request.callback_url,
            "compile": request.compile,
        })
        if request.callback_secret:
            # Kept apart from the record, which the API shows.
            self.store.set(self._callback_secret_key(model_id), request.callback_secret)
        return record

    @staticmethod
    def _callback_secret_key(model_id: str) -> str:
        return key("model", model_id, "callback-secret")

    def callback_secret(self, model_id: str) -> str | None:
        """The key the client chose for signing this model's callback."""
        value = self.store.get(self._callback_secret_key(model_id))
        return value.decode() if value else None

    def bundle_path(self, model_id: str):
        return self.artifacts.path(self.KIND, model_id, BUNDLE_FILENAME)

    def train(self, model_id: str, dataset: dict[str, Any], dataset_path,
              progress: training.Progress, compile_onnx: bool
              ) -> tuple[dict[str, Any], training.FittedModel]:
        """Fit the model (in a Celery worker), store its bundle and publish it: ``ready``.

        It is served by scikit-learn until :meth:`compile` (run next when
        ``compile_onnx``) publishes the compiled version.
        """
        record = self.catalog.update(model_id, status="training", started_at=time.time())
        progress(0.02, "loading the data set")
        frame = datasets.load_frame(dataset_path, dataset["format"], dataset["string_columns"])
        fitted = training.train(frame, record["target"], record["estimator"], record["params"],
                                features=record["features"], test_size=record["test_size"],
                                cv=record["cv"], progress=progress)
        if not compile_onnx:
            fitted.bundle.engine_reason = "not compiled: ONNX compilation is off for this model"
        else:
            fitted.bundle.engine_reason = "compiling to ONNX; scikit-learn serves meanwhile"
        record = self._store_bundle(model_id, fitted.bundle, status="ready",
                                    finished_at=time.time())
        return record, fitted

    def compile(self, model_id: str, fitted: training.FittedModel) -> dict[str, Any]:
        """Convert to ONNX and, if it agrees with scikit-learn, publish it as a new version.

        The model stays ``ready`` throughout; its ``engine`` says which engine serves and why.
        """
        bundle = training.compile_onnx(fitted)
        if bundle.onnx is None:  # nothing new to serve: only the reason changes
            return self.catalog.update(model_id, engine=bundle.describe()["engine"])
        return self._store_bundle(model_id, bundle)

    def _store_bundle(self, model_id: str, bundle: ModelBundle, data: bytes | None = None,
                      **changes: Any) -> dict[str, Any]:
        """Write the bundle file, publish it as a new version and update the record."""
        data = data if data is not None else bundles.dumps(bundle, self.secret)
        with self.artifacts.writing(self.KIND, model_id, BUNDLE_FILENAME) as (handle, _):
            handle.write(data)
        version = model_store.publish(self.store, model_id, data)
        return self.catalog.update(model_id, version=version, size_bytes=len(data),
                                   **_record_from_bundle(bundle), **changes)

    def fail(self, model_id: str, error: str) -> dict[str, Any]:
        return self.catalog.update(model_id, status="failed", finished_at=time.time(),
                                   error=error)

    def import_bundle(self, source: BinaryIO, owner: Identity, name: str | None,
                      limit: int) -> dict[str, Any]:
        """Verify an uploaded bundle's signature, then (only then) load and publish it."""
        data = source.read(limit + 1)
        if len(data) > limit:
            raise ModelRequestError(f"the bundle is larger than {limit} bytes", status=413)
        try:
            bundle = bundles.loads(data, self.secret)
        except bundles.BundleError as exc:
            raise ModelRequestError(str(exc), status=400) from None
        if bundle.onnx is None or bundle.engine != "onnxruntime":
            bundle.engine, bundle.onnx = "scikit-learn", None
            bundle.engine_reason = f"uploaded bundle without a checked ONNX graph " \
                                   f"({bundle.engine_reason})"
        model_id = Catalog.new_id()
        self.catalog.create({"id": model_id, "name": name or f"uploaded {bundle.estimator}",
                             "owner": owner.username, "status": "queued", "source": "upload"})
        try:
            return self._store_bundle(model_id, bundle, data, status="ready",
                                      finished_at=time.time())
        except BaseException:
            self.delete(model_id)
            raise

    def delete(self, model_id: str) -> None:
        """Forget the model everywhere; every API worker's cache drops it on its next look."""
        self.catalog.delete(model_id)
        self.discard(model_id)

    def discard(self, model_id: str) -> None:
        """Remove a model's published bytes and files (its record is already gone)."""
        model_store.unpublish(self.store, model_id)
        self.store.delete(self._callback_secret_key(model_id))
        self.artifacts.delete(self.KIND, model_id)


def callback_payload(record: dict[str, Any]) -> dict[str, Any]:
    """What a training callback says about the model."""
    payload = {"model_id": record["id"], "status": record["status"]}
    if record["status"] == "ready":
        payload["metrics"] = record.get("metrics", {})
    else:
        payload["error"] = record.get("error", "unknown error")
    return payload

