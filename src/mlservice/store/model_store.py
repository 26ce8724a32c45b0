"""Models kept in step: the catalog record, the bundle file and the published bytes.

A model's life is its :class:`~mlservice.store.records.ModelStatus`:
``queued`` (request accepted, task enqueued) → ``training`` (a Celery worker
fits it, see :mod:`mlservice.training.jobs`) → ``ready`` (bundle written to
the artifact store and published to every API worker) or ``failed`` (with the
error). Uploaded bundles go straight to ``ready``.

What a run of its training keeps meanwhile is in
:mod:`~mlservice.store.training_runs`, and its report's files in
:mod:`~mlservice.store.report_files`; deleting a model removes those too.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import IO, Any

import redis

from ..errors import Conflict
from ..redis_client import key
from ..security import Identity
from . import bundles, monitoring_keys, published
from .artifacts import ArtifactStore
from .bundles import Engine, ModelBundle
from .catalog import Catalog, Held
from .records import ModelRecord, ModelSource, ModelStatus
from .training_runs import TrainingRuns

BUNDLE_FILENAME = "model.mlbundle"


def pins_key(model_id: str) -> str:
    """The set of registered-model versions that pin a model (``<name>:<version>`` each).

    The registry adds to it in the transaction that adds a version, and empties it
    when the registered model goes; :meth:`ModelStore.delete` refuses while it is
    not empty.
    """
    return key("model", model_id, "pinned-by")


def pin_member(name: str, version: int) -> str:
    """One version's member of :func:`pins_key` (names hold no ``:``)."""
    return f"{name}:{version}"


def pinned_refusal(model_id: str, holders: list[str]) -> Conflict:
    """409 for changing a model that registered versions pin, naming them and the way out."""
    pins = [holder.rpartition(":") for holder in holders]
    named = ", ".join(f"version {version} of {name!r}" for name, _, version in pins)
    first = pins[0][0]
    return Conflict(
        f"model {model_id!r} is {named} in the registry, and a registered version "
        f"never changes: delete the registered model first (remove its aliases, then "
        f"DELETE /resource/registry/{first})"
    )


def _record_from_bundle(bundle: ModelBundle) -> dict[str, Any]:
    described = bundle.describe()
    return {
        key: described[key]
        for key in (
            "task",
            "estimator",
            "params",
            "target",
            "classes",
            "input_schema",
            "metrics",
            "versions",
            "training_seconds",
            "engine",
            "warnings",
        )
    }


class ModelStore:
    """Model records, bundle files and published bundles, kept in step."""

    KIND = "models"

    def __init__(
        self,
        catalog: Catalog[ModelRecord],
        artifacts: ArtifactStore,
        redis_client: redis.Redis,
        secret: str,
        runs: TrainingRuns,
    ) -> None:
        self.catalog = catalog
        self.artifacts = artifacts
        self.redis = redis_client
        self.secret = secret
        #: The models' training runs, whose state a deleted model leaves behind.
        self.runs = runs

    def create(self, record: ModelRecord, callback_secret: str | None = None) -> ModelRecord:
        """Store the record of an accepted training request (see ``TrainingRequest.record``).

        ``callback_secret`` signs the training callback; it is kept apart from
        the record, which the API shows.
        """
        record = self.catalog.create(record)
        if callback_secret:
            self.runs.keep_callback_secret(record["id"], callback_secret)
        return record

    def bundle_path(self, model_id: str) -> Path:
        return self.artifacts.path(self.KIND, model_id, BUNDLE_FILENAME)

    def store_bundle(
        self, model_id: str, bundle: ModelBundle, data: bytes | None = None, **changes: Any
    ) -> ModelRecord:
        """Write the bundle file, publish it as a new version and update the record."""
        data = data if data is not None else bundles.dumps(bundle, self.secret)
        with self.artifacts.writing(self.KIND, model_id, BUNDLE_FILENAME) as (handle, _):
            handle.write(data)
        version = published.publish(self.redis, model_id, data)
        return self.catalog.update(
            model_id,
            version=version,
            size_bytes=len(data),
            bundle_sha256=hashlib.sha256(data).hexdigest(),
            **_record_from_bundle(bundle),
            **changes,
        )

    def fail(self, model_id: str, error: str) -> ModelRecord:
        return self.catalog.update(
            model_id, status=ModelStatus.FAILED, finished_at=time.time(), error=error
        )

    def import_bundle(
        self, source: IO[bytes], owner: Identity, name: str | None, limit: int
    ) -> ModelRecord:
        """Verify an uploaded bundle's signature, then (only then) load and publish it.

        ``source`` is the uploaded file (seekable, on disk): its signature is
        checked over it a chunk at a time before anything is unpickled or held
        whole in memory (:func:`bundles.verify_stream`).
        """
        bundles.verify_stream(source, self.secret, limit)
        source.seek(0)
        data = source.read()  # signed by this service: kept and published whole
        bundle = bundles.loads(data, self.secret)
        if bundle.onnx is None or bundle.engine != Engine.ONNXRUNTIME:
            bundle.engine, bundle.onnx = Engine.SCIKIT_LEARN.value, None
            bundle.engine_reason = (
                f"uploaded bundle without a checked ONNX graph ({bundle.engine_reason})"
            )
        model_id = Catalog.new_id()
        self.catalog.create(
            {
                "id": model_id,
                "name": name or f"uploaded {bundle.estimator}",
                "owner": owner.username,
                "owner_id": owner.require_account_id(),
                "status": ModelStatus.QUEUED,
                "source": ModelSource.UPLOAD,
            }
        )
        try:
            return self.store_bundle(
                model_id, bundle, data, status=ModelStatus.READY, finished_at=time.time()
            )
        except BaseException:
            self.delete(model_id)
            raise

    def delete(self, model_id: str) -> ModelRecord:
        """Forget the model everywhere; every API worker's cache drops it on its next look.

        Returns the record it had (a caller revokes its training task). 409 while a
        registered version pins it (:func:`pins_key`).
        """
        try:
            record = self.catalog.delete(model_id, unless_held_by=pins_key(model_id))
        except Held as held:
            raise pinned_refusal(model_id, held.holders) from None
        self.discard(model_id)
        return record

    def discard(self, model_id: str) -> None:
        """Remove a model's published bytes, files and run state (its record is gone).

        A running training's lease and its place in the running set stay: they
        are its own, and a run that dies after this is found by them and
        discarded again (:mod:`mlservice.training.jobs`).
        """
        published.unpublish(self.redis, model_id)
        self.runs.forget(model_id)
        monitoring_keys.forget(self.redis, self.artifacts, model_id)
        self.artifacts.delete(self.KIND, model_id)

    def load_bundle(self, model_id: str) -> ModelBundle:
        """The model's stored bundle, its signature checked."""
        return bundles.loads(self.bundle_path(model_id).read_bytes(), self.secret)


def callback_payload(record: ModelRecord) -> dict[str, Any]:
    """What a training callback says about the model."""
    payload: dict[str, Any] = {"model_id": record["id"], "status": record["status"]}
    if record["status"] == ModelStatus.READY:
        payload["metrics"] = record.get("metrics", {})
    else:
        payload["error"] = record.get("error", "unknown error")
    return payload
