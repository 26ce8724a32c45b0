"""Models kept in step: the catalog record, the bundle file and the published bytes.

A model's life is its :class:`~mlservice.store.records.ModelStatus`:
``queued`` (request accepted, task enqueued) → ``training`` (a Celery worker
fits it, see :mod:`mlservice.training.jobs`) → ``ready`` (bundle written to
the artifact store and published to every API worker) or ``failed`` (with the
error). Uploaded bundles go straight to ``ready``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import IO, Any

import redis

from ..errors import TooLarge
from ..redis_client import key, text
from ..security import Identity
from . import bundles, published
from .artifacts import ArtifactStore
from .bundles import Engine, ModelBundle
from .catalog import Catalog
from .records import ModelRecord, ModelSource, ModelStatus

BUNDLE_FILENAME = "model.mlbundle"


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
        )
    }


class Models:
    """Model records, bundle files and the Redis model cache, kept in step."""

    KIND = "models"

    def __init__(
        self,
        catalog: Catalog[ModelRecord],
        artifacts: ArtifactStore,
        store: redis.Redis,
        secret: str,
    ) -> None:
        self.catalog = catalog
        self.artifacts = artifacts
        self.store = store
        self.secret = secret

    def create(self, record: ModelRecord, callback_secret: str | None = None) -> ModelRecord:
        """Store the record of an accepted training request (see ``TrainingRequest.record``).

        ``callback_secret`` signs the training callback; it is kept apart from
        the record, which the API shows.
        """
        record = self.catalog.create(record)
        if callback_secret:
            self.store.set(self._callback_secret_key(record["id"]), callback_secret)
        return record

    @staticmethod
    def _callback_secret_key(model_id: str) -> str:
        return key("model", model_id, "callback-secret")

    def callback_secret(self, model_id: str) -> str | None:
        """The key the client chose for signing this model's callback."""
        return text(self.store.get(self._callback_secret_key(model_id))) or None

    def bundle_path(self, model_id: str) -> Path:
        return self.artifacts.path(self.KIND, model_id, BUNDLE_FILENAME)

    def store_bundle(
        self, model_id: str, bundle: ModelBundle, data: bytes | None = None, **changes: Any
    ) -> ModelRecord:
        """Write the bundle file, publish it as a new version and update the record."""
        data = data if data is not None else bundles.dumps(bundle, self.secret)
        with self.artifacts.writing(self.KIND, model_id, BUNDLE_FILENAME) as (handle, _):
            handle.write(data)
        version = published.publish(self.store, model_id, data)
        return self.catalog.update(
            model_id,
            version=version,
            size_bytes=len(data),
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
        """Verify an uploaded bundle's signature, then (only then) load and publish it."""
        data = source.read(limit + 1)
        if len(data) > limit:
            raise TooLarge(f"the bundle is larger than {limit} bytes")
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

    def delete(self, model_id: str) -> None:
        """Forget the model everywhere; every API worker's cache drops it on its next look."""
        self.catalog.delete(model_id)
        self.discard(model_id)

    def discard(self, model_id: str) -> None:
        """Remove a model's published bytes and files (its record is already gone)."""
        published.unpublish(self.store, model_id)
        self.store.delete(self._callback_secret_key(model_id))
        self.artifacts.delete(self.KIND, model_id)


def callback_payload(record: ModelRecord) -> dict[str, Any]:
    """What a training callback says about the model."""
    payload: dict[str, Any] = {"model_id": record["id"], "status": record["status"]}
    if record["status"] == ModelStatus.READY:
        payload["metrics"] = record.get("metrics", {})
    else:
        payload["error"] = record.get("error", "unknown error")
    return payload
