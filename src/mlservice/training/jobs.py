"""Training a requested model end to end, in a Celery worker: fit, publish, compile.

The Celery tasks (:mod:`.celery_tasks`) are shells around these functions: they
know the task's progress and callbacks, these know the stores. A model is
``ready`` (served by scikit-learn) as soon as it is fitted; compiling to ONNX
then publishes a faster version of the same model.

A worker can die mid-run (killed, out of memory, stopped), and its message is
then delivered again, so a delivery first looks at what is done:

* the model is gone (deleted): nothing to do, leftovers of a cut-short run go;
* it is finished (:func:`is_finished`: ``failed``, or ``ready`` with no
  compile step pending): nothing is trained again;
* it is ``ready`` with its compile step pending: only that step runs again,
  on the held-out rows kept beside the bundle (:func:`resume_compile`);
* otherwise it is fitted from the start.

A run holds the model's *lease* (:func:`begin`): a Redis key with a TTL of
:data:`LEASE_SECONDS` that a thread of the run refreshes every
:data:`HEARTBEAT_SECONDS`, so that a second delivery never trains beside a
live run, and a run whose worker died is seen within seconds: its lease
lapses, or names a process of this host that no longer runs. Every start is
counted; one past ``[service] max_training_deliveries`` fails the model
instead (:func:`too_many_deliveries`). :func:`sweep`, run every few seconds
by ``celery beat``, resumes the runs whose lease lapsed, and
:func:`resend_lost_callbacks` the callbacks that went down with a worker.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import pandas as pd

from ..context import process_name
from ..errors import NotFound
from ..store import dataset_files
from ..store.bundles import Engine
from ..store.model_lifecycle import Models
from ..store.records import DatasetRecord, ModelRecord, ModelStatus
from . import fitting, onnx_conversion, reports
from .fitting import FittedModel, Progress
from .pipeline import as_model_input

log = logging.getLogger(__name__)

#: A run's lease lapses this long after its last refresh.
LEASE_SECONDS = 30.0
#: How often a run refreshes its lease.
HEARTBEAT_SECONDS = 5.0
#: A queued callback whose attempt has not started this long after it was due was lost.
CALLBACK_GRACE_SECONDS = 30.0


class TrainingFailed(Exception):
    """The model's training failed; the message is the model's ``error``."""


def too_many_deliveries(started: int, limit: int) -> str:
    """Why a model is failed when its training keeps stopping its worker."""
    return (
        f"training was started {started} times and its worker stopped each time before it "
        f"finished (killed, out of memory, or shut down); [service] max_training_deliveries "
        f"= {limit} allows no more"
    )


def is_finished(models: Models, record: ModelRecord) -> bool:
    """Nothing is left to do: ``failed``, or ``ready`` with no compile step pending."""
    if record["status"] == ModelStatus.FAILED:
        return True
    return record["status"] == ModelStatus.READY and not models.compile_pending(record["id"])


# --- the lease of a run -----------------------------------------------------------------


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _this_host() -> str:
    """Processes whose ids this process can check: the host name and the pid namespace."""
    return f"{socket.gethostname()} {_pid_namespace()}"


def _process_runs(pid: int) -> bool:
    """The process exists and is not a zombie (killed, not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def holder_is_dead(holder: str) -> bool:
    """True only when a lease's holder provably died: a process of this host that is gone.

    A holder on another host (another container) is never judged: its lease lapses.
    """
    try:
        data = json.loads(holder)
        host, pid = data["host"], int(data["pid"])
    except (ValueError, TypeError, KeyError):
        return False
    return host == _this_host() and pid != os.getpid() and not _process_runs(pid)


class Run:
    """One delivery's hold on a model's training, its lease refreshed by a thread.

    Leaving the ``with`` block stops the refreshes. A run marked :attr:`finished`
    (the model ended ready, failed or deleted) gives up its lease and its place in
    the running set; any other drops just its lease, so that :func:`sweep`
    resumes the model at once.
    """

    def __init__(self, models: Models, model_id: str, holder: str, delivery: int) -> None:
        self.models = models
        self.model_id = model_id
        self.holder = holder
        #: 1 for the first start of the model's training, 2 for the next...
        self.delivery = delivery
        self.finished = False
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._keep, name=f"lease-{model_id}", daemon=True)

    def _keep(self) -> None:
        while not self._stopped.wait(HEARTBEAT_SECONDS):
            try:
                if not self.models.refresh_lease(self.model_id, self.holder, LEASE_SECONDS):
                    log.warning("model %s: another run took the lease", self.model_id)
            except Exception:  # Redis away for a moment: the next beat tries again
                log.warning("model %s: lease not refreshed", self.model_id, exc_info=True)

    def __enter__(self) -> Run:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._thread.join(HEARTBEAT_SECONDS)
        try:
            if self.finished:
                self.models.release_lease(self.model_id, self.holder)
            else:
                self.models.drop_lease(self.model_id, self.holder)
        except Exception:  # the lease lapses by itself, and sweep() settles the run
            log.warning("model %s: lease not given up", self.model_id, exc_info=True)


def begin(models: Models, model_id: str) -> Run | None:
    """Take the model's lease for this delivery, counting it; ``None`` if a live run has it."""
    holder = json.dumps(
        {"host": _this_host(), "pid": os.getpid(), "run": uuid.uuid4().hex, "at": time.time()}
    )
    current = models.lease(model_id)
    dead = current if current is not None and holder_is_dead(current) else None
    if current is not None and dead is None:
        return None
    delivery = models.acquire_lease(model_id, holder, LEASE_SECONDS, replacing=dead)
    if delivery is None:
        return None
    return Run(models, model_id, holder, delivery)


def sweep(
    models: Models,
    resume: Callable[[ModelRecord], None],
    call_back: Callable[[ModelRecord], None],
) -> list[str]:
    """Find the runs that stopped without finishing, and resume them; the models resumed.

    A run is in the running set from its start to its end; one there whose lease
    lapsed (or whose holder is a dead process of this host) died. Exactly one
    sweeper claims it, then: a deleted model's leftovers are removed; a finished
    model gets its callback if the run died before sending it; any other is
    handed to ``resume`` (delivered again).
    """
    resumed = []
    for model_id in models.running():
        current = models.lease(model_id)
        if current is not None and not holder_is_dead(current):
            continue
        if not models.claim_expired_run(model_id, current):
            continue
        try:
            record = models.catalog.get(model_id)
        except NotFound:
            log.info("model %s: deleted while training; its leftovers are removed", model_id)
            models.discard(model_id)
            continue
        if is_finished(models, record):
            call_back(record)
            continue
        log.warning("model %s: its training run stopped before finishing; resumed", model_id)
        try:
            resume(record)
        except BaseException:
            models.mark_running(model_id)  # the next sweep tries again
            raise
        resumed.append(model_id)
    return resumed


def resend_lost_callbacks(models: Models, send: Callable[[ModelRecord], None]) -> list[str]:
    """Queue again the callbacks whose attempt never started (lost with a worker); their models.

    The callback of an outcome is queued once (``Models.claim_callback``) and
    pending until delivered or given up; each attempt moves its deadline past
    the next retry. One still pending past its deadline was lost: it goes again,
    with the same delivery id, so a receiver that got it anyway can tell.
    """
    now = time.time()
    sent = []
    for model_id, status in models.overdue_callbacks(now, now + CALLBACK_GRACE_SECONDS):
        try:
            record = models.catalog.get(model_id)
        except NotFound:
            models.callback_settled(model_id, status)
            continue
        if record["status"] != status or not record.get("callback_url"):
            models.callback_settled(model_id, status)
            continue
        log.warning(
            "model %s: its %s callback was lost with its worker; sent again", model_id, status
        )
        send(record)
        sent.append(model_id)
    return sent


# --- the steps of a run --------------------------------------------------------------------


def fit_model(
    models: Models,
    model_id: str,
    dataset: DatasetRecord,
    dataset_path: Path,
    progress: Progress,
    compile_onnx: bool,
) -> tuple[ModelRecord, FittedModel, pd.Series]:
    """Fit the model, store its bundle and publish it: ``ready``; also the target column.

    It is served by scikit-learn until :func:`compile_model` (run next when
    ``compile_onnx``) publishes the compiled version. The compile step is
    recorded as pending, with the held-out rows it checks on, before the
    model is stored: a run cut short after this resumes with that step alone.
    The report's plots (:mod:`.reports`) are drawn next, by :func:`render_report`
    from the target column returned, while the model already serves; a run
    that fits again draws them again.
    """
    record = models.catalog.update(
        model_id, status=ModelStatus.TRAINING, started_at=time.time(), worker=process_name()
    )
    progress(0.02, "loading the data set")
    frame = dataset_files.load_frame(
        dataset_path,
        dataset["format"],
        dataset["string_columns"],
        delimiter=dataset_files.delimiter_of(dataset),
    )
    fitted = fitting.train(
        frame,
        record["target"],
        record["estimator"],
        record["params"],
        features=record["features"],
        test_size=record["test_size"],
        cv=record["cv"],
        progress=progress,
    )
    reports.mark_rendering(models, model_id)
    if not compile_onnx:
        fitted.bundle.engine_reason = "not compiled: ONNX compilation is off for this model"
    else:
        fitted.bundle.engine_reason = "compiling to ONNX; scikit-learn serves meanwhile"
        models.keep_for_compiling(model_id, fitted.held_out)
    record = models.store_bundle(
        model_id, fitted.bundle, status=ModelStatus.READY, finished_at=time.time()
    )
    return record, fitted, frame[record["target"]]


def render_report(
    models: Models, model_id: str, fitted: FittedModel, target: pd.Series, progress: Progress
) -> None:
    """Draw the report's plots on the held-out rows (about a second); never fails the run."""
    progress(0.96, "rendering the report's plots")
    reports.render_and_store(models, model_id, fitted.bundle, fitted.held_out, target)


def resume_compile(models: Models, model_id: str) -> FittedModel | None:
    """The stored model and its held-out rows, to run an interrupted compile step again.

    ``None`` (the model stays on scikit-learn, with the reason) if they cannot be read.
    """
    try:
        bundle = models.load_bundle(model_id)
        held_out = models.held_out(model_id)
        if held_out is None:
            raise FileNotFoundError("its held-out rows are gone")
        return FittedModel(bundle, as_model_input(held_out, bundle.schema))
    except Exception as exc:
        log.exception("model %s: the compile step cannot be resumed", model_id)
        stop_compiling(
            models,
            model_id,
            f"compiling was interrupted and cannot resume: {type(exc).__name__}: {exc}",
        )
        return None


def stop_compiling(models: Models, model_id: str, reason: str) -> ModelRecord:
    """Give up the model's compile step: it stays on scikit-learn, for ``reason``."""
    record = models.catalog.update(model_id, engine={"name": Engine.SCIKIT_LEARN, "reason": reason})
    models.compiled(model_id)
    return record


def compile_model(models: Models, model_id: str, fitted: FittedModel) -> ModelRecord:
    """Convert to ONNX and, if it agrees with scikit-learn, publish it as a new version.

    The model stays ``ready`` throughout; its ``engine`` says which engine serves
    and why. :class:`NotFound` if the model was deleted meanwhile.
    """
    try:
        bundle = onnx_conversion.compile_onnx(fitted)
        if bundle.onnx is None:  # nothing new to serve: only the reason changes
            record = models.catalog.update(model_id, engine=bundle.engine_info())
        else:
            record = models.store_bundle(model_id, bundle)
    except NotFound:
        raise
    except Exception as exc:  # the scikit-learn version goes on serving
        log.exception("compiling model %s failed", model_id)
        return stop_compiling(models, model_id, f"compiling failed: {type(exc).__name__}: {exc}")
    models.compiled(model_id)
    return record
