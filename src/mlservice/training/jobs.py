"""Training a requested model end to end, in a Celery worker: fit, publish, compile.

The Celery tasks (:mod:`mlservice.tasks.training_tasks`) are shells around
:class:`Trainer`: they know the task's progress and how to send a callback,
it knows the stores. A model is ``ready`` (served by scikit-learn) as soon as
it is fitted; compiling to ONNX then publishes a faster version of the same
model.

A worker can die mid-run (killed, out of memory, stopped), and its message is
then delivered again, so a delivery first looks at what is done:

* the model is gone (deleted): nothing to do, leftovers of a cut-short run go;
* it is finished (:meth:`Trainer.is_finished`: ``failed``, or ``ready`` with
  no compile step pending): nothing is trained again;
* it is ``ready`` with its compile step pending: only that step runs again,
  on the held-out rows kept beside the bundle;
* otherwise it is fitted from the start.

A run holds the model's lease (:mod:`mlservice.store.leases`), so that a
second delivery never trains beside a live run, and a run whose worker died
is seen within seconds. Every start is counted; one past ``[service]
max_training_deliveries`` fails the model instead. :meth:`Trainer.sweep`, run
every few seconds by ``celery beat``, resumes the runs whose lease lapsed,
and :meth:`Trainer.resend_lost_callbacks` the callbacks that went down with a
worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import redis

from .. import logs
from ..config import DefaultModelSettings
from ..errors import NotFound, TooLarge, TrainingFailed, client_message
from ..process import process_name, service_version
from ..store import bundles, dataset_files, published
from ..store.bundles import Engine
from ..store.dataset_files import Datasets
from ..store.leases import LeaseHolder
from ..store.model_store import ModelStore, callback_payload
from ..store.records import ModelRecord, ModelStatus
from ..store.report_files import ReportFiles
from . import fitting, onnx_conversion, reports
from .callbacks import delivery_id
from .fitting import FittedModel, TrainingProgress
from .pipeline import as_model_input, profile_roles

log = logging.getLogger(__name__)

#: A queued callback whose attempt has not started this long after it was due was lost.
CALLBACK_GRACE_SECONDS = 30.0

#: Sends a model's callback: (model id, URL, payload). A Celery task in practice.
SendCallback = Callable[[str, str, dict[str, Any]], None]
#: Told of a ready model that asked to be registered (``register_as``): the registry, wired
#: by the training task (training never imports the registry). Must be idempotent.
OnReady = Callable[[ModelRecord], None]


def _no_registry(record: ModelRecord) -> None:
    """Where no registry is wired (the default model's trainer, unit tests)."""


class AlreadyRunning(Exception):
    """Another live run holds the model's lease: this delivery has nothing to do."""


#: A model's ``error`` when its training failed on an error of the service's own.
INTERNAL_ERROR = (
    "training failed on an error in the service (logged with this model's id): train "
    "the model again, and if it fails again, tell the service's operator"
)


def failure_message(model_id: str, error: Exception) -> str:
    """What a failed model's ``error`` says: the message of a refusal or of scikit-learn's
    checks of the data and parameters (which raise ValueError), that the client can act
    on; for anything else a plain sentence, the details in the log."""
    message = client_message(error)
    if message is not None:
        return message
    if isinstance(error, ValueError):
        return str(error)
    log.error("model %s: training failed", model_id, exc_info=error)
    return INTERNAL_ERROR


def too_many_deliveries(started: int, limit: int) -> str:
    """Why a model is failed when its training keeps stopping its worker."""
    return (
        f"training was started {started} times and its worker stopped each time before it "
        f"finished (killed, out of memory, or shut down); [service] max_training_deliveries "
        f"= {limit} allows no more"
    )


def outcome(record: ModelRecord) -> dict[str, Any]:
    """A run's result: the model's id, status, metrics and engine."""
    return {
        "model_id": record["id"],
        "status": record["status"],
        "metrics": record.get("metrics"),
        "engine": record.get("engine"),
    }


def deleted(model_id: str) -> dict[str, Any]:
    """A run's result when its model was deleted."""
    return {"model_id": model_id, "status": "deleted"}


@dataclass(frozen=True)
class Trainer:
    """What training works with: the stores, the limits, and how to send a callback."""

    models: ModelStore
    reports: ReportFiles
    datasets: Datasets
    #: ``[service] max_training_deliveries``.
    max_deliveries: int
    #: ``[inference] compile_onnx``: a model's own ``compile`` can only turn it off.
    compile_onnx: bool
    send_callback: SendCallback
    on_ready: OnReady = _no_registry

    def is_finished(self, record: ModelRecord) -> bool:
        """Nothing is left to do: ``failed``, or ``ready`` with no compile step pending."""
        if record["status"] == ModelStatus.FAILED:
            return True
        return record["status"] == ModelStatus.READY and not self.models.runs.compile_pending(
            record["id"]
        )

    def status(self, model_id: str) -> str | None:
        """The model's status, ``None`` once it is deleted."""
        try:
            return self.models.catalog.get(model_id)["status"]
        except NotFound:
            return None

    # --- a delivery of a model's training

    def train(self, model_id: str, progress: TrainingProgress) -> dict[str, Any]:
        """Fit a requested model; whatever happens, record it and send the callback once.

        :class:`AlreadyRunning` if a live run holds the model (this delivery is dropped);
        :class:`TrainingFailed` if the model ends ``failed``.
        """
        models = self.models
        try:
            record: ModelRecord = models.catalog.get(model_id)
        except NotFound:  # deleted: leftovers of a run cut short by the delete go too
            models.discard(model_id)
            return deleted(model_id)
        if self.is_finished(record):  # delivered again after its work was done
            return self.finished(record)
        run = models.runs.leases.begin(model_id, logs.request_id())
        if run is None:
            raise AlreadyRunning(model_id)
        if run.delivery > 1:
            log.warning(
                "model %s: training start %d (a run before it stopped before finishing)",
                model_id,
                run.delivery,
            )
        with run:
            # Read again under the lease: a run that held it may have finished meanwhile.
            try:
                record = models.catalog.get(model_id)
            except NotFound:
                models.discard(model_id)
                run.finished = True
                return deleted(model_id)
            if self.is_finished(record):
                run.finished = True
                return self.finished(record)
            return self._run(run, record, progress)

    def _run(
        self, run: LeaseHolder, record: ModelRecord, progress: TrainingProgress
    ) -> dict[str, Any]:
        """One run of a model's training, holding its lease: fit (unless done), then compile.

        A failure before the model is ``ready`` fails it; once it is ready it serves,
        whatever becomes of compiling.
        """
        models, model_id, limit = self.models, record["id"], self.max_deliveries
        compile_onnx = self.compile_onnx and record.get("compile", True)
        fitted: FittedModel | None = None
        try:
            if record["status"] != ModelStatus.READY:
                if run.delivery > limit:
                    raise TrainingFailed(too_many_deliveries(run.delivery - 1, limit))
                record, fitted, target = self.fit(model_id, progress, compile_onnx)
                self.register_once(record)
                self.call_back_once(record)
                progress(0.96, "rendering the report's plots")
                reports.render_and_store(
                    self.reports, model_id, fitted.bundle, fitted.held_out, target
                )
                fitted = fitted if compile_onnx else None
            else:  # fitted and stored: its worker died while drawing or compiling
                self.register_once(record)
                self.reports.abandon_rendering(model_id)
                if run.delivery > limit:  # compiling keeps stopping its worker
                    reason = "not compiled: " + too_many_deliveries(run.delivery - 1, limit)
                    record = self.stop_compiling(model_id, reason)
                else:
                    log.info("model %s: resuming its compile (delivery %d)", model_id, run.delivery)
                    fitted = self.resume_compile(model_id)
            if fitted is not None:
                # After the callback: the model already serves; compiling only makes it faster.
                progress(0.97, "compiling to ONNX")
                record = self.compile(model_id, fitted)
        except NotFound:
            if self.status(model_id) is None:  # deleted meanwhile: leave nothing behind
                models.discard(model_id)
                run.finished = True
                return deleted(model_id)
            record = models.fail(model_id, "its data set was deleted before training")
            run.finished = True
            self.call_back_once(record)
            raise TrainingFailed(record["error"]) from None
        except Exception as exc:
            if self.status(model_id) == ModelStatus.READY:
                raise  # it serves: the run ends unfinished and is resumed (compiling again)
            error = failure_message(model_id, exc)
            record = models.fail(model_id, error)
            run.finished = True
            self.call_back_once(record)
            if isinstance(exc, TrainingFailed):
                raise
            # The task's status then says what the model's error says (details: the log).
            raise TrainingFailed(error) from exc
        run.finished = True
        return outcome(record)

    def finished(self, record: ModelRecord) -> dict[str, Any]:
        """A delivery of a finished model: the outcome again, and its callback if still unsent."""
        log.info("model %s is already %s: not trained again", record["id"], record["status"])
        self.register_once(record)
        self.call_back_once(record)
        if record["status"] == ModelStatus.FAILED:
            raise TrainingFailed(record.get("error", "unknown error"))
        return outcome(record)

    # --- the steps of a run

    def fit(
        self, model_id: str, progress: TrainingProgress, compile_onnx: bool
    ) -> tuple[ModelRecord, FittedModel, pd.Series]:
        """Fit the model, store its bundle and publish it: ``ready``; also the target column.

        It is served by scikit-learn until :meth:`compile` (run next when
        ``compile_onnx``) publishes the compiled version. The compile step is
        recorded as pending, with the held-out rows it checks on, before the
        model is stored: a run cut short after this resumes with that step alone.
        The report's plots (:mod:`.reports`) are drawn next, from the target
        column returned, while the model already serves; a run that fits again
        draws them again.
        """
        models = self.models
        record = models.catalog.update(
            model_id, status=ModelStatus.TRAINING, started_at=time.time(), worker=process_name()
        )
        dataset = self.datasets.catalog.get(record["dataset_id"])
        progress(0.02, "loading the data set")
        try:
            frame = dataset_files.load_frame(
                self.datasets.path(dataset),
                dataset["format"],
                dataset["string_columns"],
                dialect=dataset_files.dialect_of(dataset),
                limits=self.datasets.limits,
            )
        except TooLarge as exc:  # over [limits] max_training_mb: the message says so
            raise TrainingFailed(exc.message) from None
        roles, reasons = profile_roles(dataset.get("columns", []))
        fitted = fitting.train(
            frame,
            record["target"],
            record["estimator"],
            record["params"],
            features=record["features"],
            test_size=record["test_size"],
            cv=record["cv"],
            progress=progress,
            roles=roles,
            reasons=reasons,
            overrides=record.get("columns") or {},
        )
        self.reports.mark_rendering(model_id)
        if not compile_onnx:
            fitted.bundle.engine_reason = "not compiled: ONNX compilation is off for this model"
        else:
            fitted.bundle.engine_reason = "compiling to ONNX; scikit-learn serves meanwhile"
            models.runs.keep_for_compiling(model_id, fitted.held_out)
        record = models.store_bundle(
            model_id,
            fitted.bundle,
            status=ModelStatus.READY,
            finished_at=time.time(),
            dataset_sha256=dataset.get("sha256"),
            service_version=service_version(),
        )
        return record, fitted, frame[record["target"]]

    def resume_compile(self, model_id: str) -> FittedModel | None:
        """The stored model and its held-out rows, to run an interrupted compile step again.

        ``None`` (the model stays on scikit-learn, with the reason) if they cannot be read.
        """
        try:
            bundle = self.models.load_bundle(model_id)
            held_out = self.models.runs.held_out(model_id)
            if held_out is None:
                raise FileNotFoundError("its held-out rows are gone")
            return FittedModel(bundle, as_model_input(held_out, bundle.schema))
        except Exception:
            log.exception("model %s: the compile step cannot be resumed", model_id)
            self.stop_compiling(
                model_id,
                "compiling was interrupted and cannot resume (the reason is in the worker's "
                "log, with this model's id); scikit-learn serves it",
            )
            return None

    def stop_compiling(self, model_id: str, reason: str) -> ModelRecord:
        """Give up the model's compile step: it stays on scikit-learn, for ``reason``."""
        record = self.models.catalog.update(
            model_id, engine={"name": Engine.SCIKIT_LEARN, "reason": reason}
        )
        self.models.runs.compiled(model_id)
        return record

    def compile(self, model_id: str, fitted: FittedModel) -> ModelRecord:
        """Convert to ONNX and, if it agrees with scikit-learn, publish it as a new version.

        The model stays ``ready`` throughout; its ``engine`` says which engine serves
        and why. :class:`NotFound` if the model was deleted meanwhile.
        """
        models = self.models
        try:
            bundle = onnx_conversion.compile_onnx(fitted)
            if bundle.onnx is None:  # nothing new to serve: only the reason changes
                record = models.catalog.update(model_id, engine=bundle.engine_info())
            else:
                record = models.store_bundle(model_id, bundle)
        except NotFound:
            raise
        except Exception:  # the scikit-learn version goes on serving
            log.exception("compiling model %s failed", model_id)
            return self.stop_compiling(
                model_id,
                "compiling failed (the reason is in the worker's log, with this model's id); "
                "scikit-learn serves it",
            )
        models.runs.compiled(model_id)
        return record

    def stopped_by_time_limit(self, model_id: str, limit_seconds: int) -> None:
        """A hard time limit killed the run's process: settle the model now, not at a
        redelivery (a model that was ready serves on, uncompiled)."""
        try:
            record = self.models.catalog.get(model_id)
        except NotFound:
            return
        if self.is_finished(record):
            return
        why = f"over [service] task_time_limit_seconds = {limit_seconds}"
        if record["status"] == ModelStatus.READY:  # killed while compiling: it serves as it is
            self.stop_compiling(model_id, f"compiling was stopped: {why}")
            return
        self.call_back_once(self.models.fail(model_id, f"training was stopped: {why}"))

    # --- registering and calling back

    def register_once(self, record: ModelRecord) -> None:
        """A ready model with ``register_as`` becomes that name's next version (the
        registry gives back the version it already has on a second call)."""
        if record.get("register_as") and record["status"] == ModelStatus.READY:
            self.on_ready(record)

    def call_back_once(self, record: ModelRecord) -> None:
        """Queue the callback of the model's outcome, unless it was queued before."""
        url = record.get("callback_url")
        if not url or record["status"] not in (ModelStatus.READY, ModelStatus.FAILED):
            return
        payload = callback_payload(record)
        deadline = time.time() + CALLBACK_GRACE_SECONDS
        runs = self.models.runs
        if runs.claim_callback(record["id"], record["status"], delivery_id(payload), deadline):
            self.send_callback(record["id"], url, payload)

    # --- the sweep: runs and callbacks lost with their worker

    def sweep(self, resume: Callable[[ModelRecord], None]) -> list[str]:
        """Find the runs that stopped without finishing, and resume them; the models resumed.

        A run is in the running set from its start to its end; one there whose lease
        lapsed (or whose holder is a dead process of this host) died. Exactly one
        sweeper claims it, then: a deleted model's leftovers are removed; a finished
        model gets its callback if the run died before sending it; any other is
        handed to ``resume`` (delivered again).
        """
        models, resumed = self.models, []
        for model_id in models.runs.leases.expired():
            try:
                record = models.catalog.get(model_id)
            except NotFound:
                log.info("model %s: deleted while training; its leftovers are removed", model_id)
                models.discard(model_id)
                continue
            if self.is_finished(record):
                self.register_once(record)
                self.call_back_once(record)
                continue
            log.warning("model %s: its training run stopped before finishing; resumed", model_id)
            try:
                resume(record)
            except BaseException:
                models.runs.leases.mark_running(model_id)  # the next sweep tries again
                raise
            resumed.append(model_id)
        return resumed

    def resend_lost_callbacks(self) -> list[str]:
        """Queue again the callbacks whose attempt never started (lost with a worker); their
        models.

        The callback of an outcome is queued once (``TrainingRuns.claim_callback``) and
        pending until delivered or given up; each attempt moves its deadline past
        the next retry. One still pending past its deadline was lost: it goes again,
        with the same delivery id, so a receiver that got it anyway can tell.
        """
        now = time.time()
        runs, sent = self.models.runs, []
        for model_id, status in runs.overdue_callbacks(now, now + CALLBACK_GRACE_SECONDS):
            try:
                record = self.models.catalog.get(model_id)
            except NotFound:
                runs.callback_settled(model_id, status)
                continue
            url = record.get("callback_url")
            if record["status"] != status or not url:
                runs.callback_settled(model_id, status)
                continue
            log.warning(
                "model %s: its %s callback was lost with its worker; sent again", model_id, status
            )
            self.send_callback(model_id, url, callback_payload(record))
            sent.append(model_id)
        return sent


def train_default_model(
    settings: DefaultModelSettings,
    compile_onnx: bool,
    redis_client: redis.Redis,
    secret: str,
    progress: TrainingProgress,
) -> dict[str, Any]:
    """Train the service's default model (``[default_model]``) and publish it to every worker."""
    fitted = fitting.train_default_model(settings, progress)
    bundle = fitted.bundle
    if compile_onnx:
        progress(0.97, "compiling to ONNX")
        bundle = onnx_conversion.compile_onnx(fitted)
    else:
        bundle.engine_reason = "not compiled: [inference] compile_onnx is false"
    version = published.publish(
        redis_client, published.DEFAULT_MODEL_ID, bundles.dumps(bundle, secret)
    )
    return {
        "model_id": published.DEFAULT_MODEL_ID,
        "version": version,
        "estimator": bundle.estimator,
        "metrics": bundle.metrics,
        "engine": bundle.engine_info(),
    }
