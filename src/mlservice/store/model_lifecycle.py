"""Models kept in step: the catalog record, the bundle file and the published bytes.

A model's life is its :class:`~mlservice.store.records.ModelStatus`:
``queued`` (request accepted, task enqueued) → ``training`` (a Celery worker
fits it, see :mod:`mlservice.training.jobs`) → ``ready`` (bundle written to
the artifact store and published to every API worker) or ``failed`` (with the
error). Uploaded bundles go straight to ``ready``.

A training run keeps its state in Redis beside the record (:class:`Models`'
``*_lease``, ``*_run`` and ``*compile*`` methods), so that a run cut short by
a dead worker is found and resumed (see :mod:`mlservice.training.jobs`):

* a *lease* ``model:<id>:lease`` (JSON: host, pid, run id) with a TTL its run
  refreshes, and the model in the sorted set ``training:running`` while a run
  has started and not finished: a member without a lease is a run that died;
* ``model:<id>:deliveries``, how many times a run has started;
* ``model:<id>:compile-pending`` and the held-out rows beside the bundle, from
  the moment the fitted model is stored until ONNX compilation is done;
* ``model:<id>:callback:<status>``: the callback for that outcome was queued
  (once); until it is delivered or given up, ``<id>:<status>`` stays in the
  sorted set ``callbacks:pending``, scored by the time its next attempt must
  have started by: one overdue was lost with its worker, and is sent again.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import IO, Any

import pandas as pd
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
#: The held-out rows ONNX compilation is checked on, kept until it is done.
HELD_OUT_FILENAME = "held-out.parquet"
#: The training report's directory beside the bundle: plots and REPORT_FILENAME listing them.
REPORT_DIRNAME = "report"
REPORT_FILENAME = "report.json"
#: Models whose training run started and has not finished, scored by start time.
RUNNING_KEY = key("training", "running")
#: Callbacks queued and neither delivered nor given up: ``<model_id>:<status>`` -> deadline.
CALLBACKS_KEY = key("callbacks", "pending")

# Lease scripts: each reads and writes a model's lease and the running set in one step.
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[5] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return redis.call('INCR', KEYS[2])
"""
_REFRESH = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not current then return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) and 1 end
return 0
"""
_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_CLAIM_CALLBACK = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
  return 1
end
return 0
"""
# 1: the callback is to be attempted (its deadline moved to ARGV[1]); 0: it was settled.
_CALLBACK_DUE = """
if redis.call('ZSCORE', KEYS[2], ARGV[2]) then
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
  return 1
end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
return 1
"""
_OVERDUE_CALLBACKS = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], member) end
return due
"""
# Ends a run unless another holder has the lease: ARGV[2] is the lease's holder, or "".
_END_RUN = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[2] then return 0 end
if current then redis.call('DEL', KEYS[1]) end
return redis.call('ZREM', KEYS[2], ARGV[1])
"""


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
        self._acquire = store.register_script(_ACQUIRE)
        self._refresh = store.register_script(_REFRESH)
        self._drop = store.register_script(_DROP)
        self._end_run = store.register_script(_END_RUN)
        self._claim_callback = store.register_script(_CLAIM_CALLBACK)
        self._callback_due = store.register_script(_CALLBACK_DUE)
        self._overdue_callbacks = store.register_script(_OVERDUE_CALLBACKS)

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
        """Remove a model's published bytes, files and training state (its record is gone).

        A running training's lease and its place in the running set stay: they
        are its own, and a run that dies after this is found by them and
        discarded again (:mod:`mlservice.training.jobs`).
        """
        published.unpublish(self.store, model_id)
        self.store.delete(
            self._callback_secret_key(model_id),
            self._deliveries_key(model_id),
            self._compile_key(model_id),
            *(self._callback_key(model_id, status) for status in ModelStatus),
        )
        self.store.zrem(CALLBACKS_KEY, *(f"{model_id}:{status}" for status in ModelStatus))
        self.artifacts.delete(self.KIND, model_id)

    # --- training runs: lease, deliveries, compile step, callbacks (see the module doc)

    @staticmethod
    def _lease_key(model_id: str) -> str:
        return key("model", model_id, "lease")

    @staticmethod
    def _deliveries_key(model_id: str) -> str:
        return key("model", model_id, "deliveries")

    @staticmethod
    def _compile_key(model_id: str) -> str:
        return key("model", model_id, "compile-pending")

    @staticmethod
    def _callback_key(model_id: str, status: str) -> str:
        return key("model", model_id, "callback", status)

    def lease(self, model_id: str) -> str | None:
        """The lease of the model's running training (its holder, as JSON), if any."""
        return text(self.store.get(self._lease_key(model_id)))

    def acquire_lease(
        self, model_id: str, holder: str, seconds: float, replacing: str | None = None
    ) -> int | None:
        """Take the model's lease for ``holder`` and count a delivery: its number.

        ``None`` if another holder has it; ``replacing`` names a holder known to
        be dead, whose lease is taken over.
        """
        delivery = self._acquire(
            keys=[self._lease_key(model_id), self._deliveries_key(model_id), RUNNING_KEY],
            args=[holder, int(seconds * 1000), time.time(), model_id, replacing or ""],
        )
        return int(delivery) or None

    def refresh_lease(self, model_id: str, holder: str, seconds: float) -> bool:
        """Extend the lease (taking it again if it lapsed); False if another holder has it."""
        return bool(
            self._refresh(keys=[self._lease_key(model_id)], args=[holder, int(seconds * 1000)])
        )

    def release_lease(self, model_id: str, holder: str) -> None:
        """The run has finished (ready, failed or deleted): its lease and running entry go.

        Unless another holder has taken the lease meanwhile: that run is then the model's.
        """
        self._end_run(keys=[self._lease_key(model_id), RUNNING_KEY], args=[model_id, holder])

    def drop_lease(self, model_id: str, holder: str) -> None:
        """The run stops unfinished: its lease goes, the model stays in the running set."""
        self._drop(keys=[self._lease_key(model_id)], args=[holder])

    def deliveries(self, model_id: str) -> int:
        """How many times the model's training has started."""
        return int(self.store.get(self._deliveries_key(model_id)) or 0)

    def running(self) -> list[str]:
        """Models whose training run started and has not finished (or died)."""
        return [str(text(item)) for item in self.store.zrange(RUNNING_KEY, 0, -1)]

    def claim_expired_run(self, model_id: str, dead_holder: str | None = None) -> bool:
        """Take a run out of the running set if its lease lapsed (or is ``dead_holder``'s).

        True for exactly one caller: the one that then resumes or discards it.
        """
        claimed = self._end_run(
            keys=[self._lease_key(model_id), RUNNING_KEY], args=[model_id, dead_holder or ""]
        )
        return bool(claimed)

    def mark_running(self, model_id: str) -> None:
        """Put a run back in the running set (its resumption could not be sent)."""
        self.store.zadd(RUNNING_KEY, {model_id: time.time()})

    def _held_out_path(self, model_id: str) -> Path:
        return self.artifacts.path(self.KIND, model_id, HELD_OUT_FILENAME)

    def keep_for_compiling(self, model_id: str, held_out: pd.DataFrame) -> None:
        """Before the fitted model is stored: its compile step is due, on these rows."""
        with self.artifacts.writing(self.KIND, model_id, HELD_OUT_FILENAME) as (handle, _):
            held_out.to_parquet(handle, index=False)
        self.store.set(self._compile_key(model_id), 1)

    def compile_pending(self, model_id: str) -> bool:
        """The model is stored but its ONNX compile step has not finished."""
        return bool(self.store.exists(self._compile_key(model_id)))

    def held_out(self, model_id: str) -> pd.DataFrame | None:
        """The held-out rows kept for a pending compile step, or ``None``."""
        try:
            return pd.read_parquet(self._held_out_path(model_id))
        except FileNotFoundError:
            return None

    def compiled(self, model_id: str) -> None:
        """The compile step is over (whatever its outcome): forget it and its rows."""
        self.store.delete(self._compile_key(model_id))
        self._held_out_path(model_id).unlink(missing_ok=True)

    # --- the training report (rendered by mlservice.training.reports); delete() removes it too

    def report_path(self, model_id: str, filename: str) -> Path:
        """A file of the model's training report: a plot, or REPORT_FILENAME."""
        return self.artifacts.path(self.KIND, model_id, REPORT_DIRNAME) / filename

    def store_report_file(self, model_id: str, filename: str, data: bytes) -> None:
        """Write a file of the report (renamed into place: a reader never sees half of it)."""
        report_dir = f"{model_id}/{REPORT_DIRNAME}"  # models/<id>/report/<filename>
        with self.artifacts.writing(self.KIND, report_dir, filename) as (handle, _):
            handle.write(data)

    def clear_report(self, model_id: str) -> None:
        """Remove the model's report before it is rendered again: no plot of an old fit stays."""
        self.report_path(model_id, REPORT_FILENAME).unlink(missing_ok=True)
        shutil.rmtree(self.artifacts.path(self.KIND, model_id, REPORT_DIRNAME), ignore_errors=True)

    def report(self, model_id: str) -> dict[str, Any] | None:
        """The model's REPORT_FILENAME (its plots and rendering errors), or ``None``."""
        try:
            return dict(json.loads(self.report_path(model_id, REPORT_FILENAME).read_text()))
        except FileNotFoundError:
            return None

    def load_bundle(self, model_id: str) -> ModelBundle:
        """The model's stored bundle, its signature checked."""
        return bundles.loads(self.bundle_path(model_id).read_bytes(), self.secret)

    def claim_callback(self, model_id: str, status: str, delivery_id: str, deadline: float) -> bool:
        """True the first time only: the callback of this outcome is to be queued now.

        It is then pending: its first attempt must have started by ``deadline``.
        """
        claimed = self._claim_callback(
            keys=[self._callback_key(model_id, status), CALLBACKS_KEY],
            args=[delivery_id, deadline, f"{model_id}:{status}"],
        )
        return bool(claimed)

    def callback_due(self, model_id: str, status: str, deadline: float) -> bool:
        """An attempt at the callback starts: False if it was already delivered or given up.

        Otherwise its next attempt, if any, must have started by ``deadline``.
        """
        due = self._callback_due(
            keys=[self._callback_key(model_id, status), CALLBACKS_KEY],
            args=[deadline, f"{model_id}:{status}"],
        )
        return bool(due)

    def callback_settled(self, model_id: str, status: str) -> None:
        """The callback was delivered, or given up: never attempted again."""
        self.store.zrem(CALLBACKS_KEY, f"{model_id}:{status}")

    def overdue_callbacks(self, now: float, next_deadline: float) -> list[tuple[str, str]]:
        """Pending callbacks whose attempt did not start in time: (model id, status) each.

        Claimed: their deadline moves to ``next_deadline``, so one caller sends each again.
        """
        members = self._overdue_callbacks(keys=[CALLBACKS_KEY], args=[now, next_deadline])
        overdue = []
        for member in members:
            model_id, _, status = str(text(member)).partition(":")
            overdue.append((model_id, status))
        return overdue


def callback_payload(record: ModelRecord) -> dict[str, Any]:
    """What a training callback says about the model."""
    payload: dict[str, Any] = {"model_id": record["id"], "status": record["status"]}
    if record["status"] == ModelStatus.READY:
        payload["metrics"] = record.get("metrics", {})
    else:
        payload["error"] = record.get("error", "unknown error")
    return payload
