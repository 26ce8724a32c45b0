"""Running a search over every Celery worker: propose trials, run them, refit the best.

The Celery tasks (:mod:`mlservice.tasks.search_tasks`) are shells around
:class:`Searcher`. A search moves by three kinds of step, each a task any
worker may take:

* **advance** (:meth:`Searcher.advance`), under the search's lock: starts the
  search's clock, skips the trials the time budget left unstarted, proposes
  new trials (:mod:`.search_plans`) until ``[search] max_parallel_trials`` are
  queued or running, and sends each as a task of its own; once no trial is in
  flight and none is left to propose, it sends the refit. It runs when the
  search starts, at the end of every trial, and from the sweep.
* **a trial** (:meth:`Searcher.run_trial`): checks at start that its search
  still wants it (not cancelled, the deadline not passed), holds the trial's
  lease, cross-validates its configuration (:mod:`.search_trials`) and records
  the result or the failure on the leaderboard. A failure (a bad combination,
  its time limit) is one row of the leaderboard; the search goes on.
* **the refit** (:meth:`Searcher.refit`): the best trial's configuration
  becomes a model like any other (:class:`~mlservice.training.jobs.Trainer`:
  fitted on the training split, scored on the held-out split, compiled to
  ONNX, its report drawn, registered as a new version with ``register_as``);
  the search adds its score on the held-out rows by its own scorer and its
  report (:mod:`.search_report`), and is ``done``.

A worker that dies mid-trial or mid-refit leaves a lapsed lease: the sweep
(:meth:`Searcher.sweep`, every few seconds) sends that work again, and a
trial that keeps killing its worker fails after ``[search]
max_trial_deliveries`` starts. No trial starts after the deadline, so a
search ends within its budget plus the longest trial already running (at
most its time limit), then refits.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import SearchSettings
from ..errors import JobFailed, NotFound, TooLarge, client_message
from ..process import process_name
from ..store import dataset_files
from ..store.catalog import Catalog
from ..store.dataset_files import Datasets
from ..store.model_store import ModelStore
from ..store.records import ModelRecord, ModelSource, ModelStatus
from ..store.search_records import (
    SEARCH_ENDED,
    TRIAL_ENDED,
    TRIAL_IN_FLIGHT,
    SearchPhase,
    SearchRecord,
    SearchStatus,
    SearchStore,
    Trial,
    TrialStatus,
    leaderboard,
    parse_trial_job,
    trial_job,
)
from . import search_report
from .fitting import TrainingProgress, no_progress
from .pipeline import profile_roles
from .search_plans import planner_for
from .search_trials import SplitRows, cross_validate_trial, held_out_score, prepare, seeded

log = logging.getLogger(__name__)

#: Sends a trial as a task: (search id, trial number, task id, time limit in seconds).
SendTrial = Callable[[str, int, str, float], None]
#: Sends the refit of a search's best configuration: (search id, task id).
SendRefit = Callable[[str, str], None]
#: Trains a model end to end (``Trainer.train``): its outcome; raises ``JobFailed`` if it
#: ends failed, and the ``already_running`` error if another run holds it.
TrainModel = Callable[[str, TrainingProgress], dict[str, Any]]
#: Told of how each trial ended (a TrialStatus).
TrialEvent = Callable[[str], None]
#: Told of a trial that starts running here (+1), and stops (-1).
TrialRunning = Callable[[int], None]

#: Data sets made ready for trials in this process, by search (one at a time).
_ROWS: dict[str, SplitRows] = {}


class TrialAlreadyRunning(Exception):
    """Another live run holds the trial's lease: this delivery is dropped."""


class RefitElsewhere(Exception):
    """The best model is being trained by another delivery: try the refit again shortly."""


def _nothing(_: object) -> None:
    """Where no metrics are wired."""


def trial_error(search_id: str, number: int, error: BaseException) -> str:
    """What a failed trial's row says: a refusal's message, or scikit-learn's check of a
    combination (ValueError, TypeError...); anything else is logged and said plainly."""
    message = client_message(error)
    if message is not None:
        return message
    if isinstance(error, (ValueError, TypeError, ArithmeticError)):
        return f"{type(error).__name__}: {error}"
    log.error("search %s: trial %d failed", search_id, number, exc_info=error)
    return "the trial failed on an error in the service (logged with the search's id)"


def past_deadline(record: SearchRecord, now: float) -> bool:
    """The search's time budget has run out."""
    deadline = record.get("deadline")
    return deadline is not None and now >= deadline


@dataclass
class Searcher:
    """What searches work with: their store, the models and data sets, the limits, and how
    to send their tasks."""

    store: SearchStore
    models: ModelStore
    datasets: Datasets
    settings: SearchSettings
    send_trial: SendTrial
    send_refit: SendRefit
    #: Trains the refitted model (the refit task wires the trainer).
    train_model: TrainModel | None = None
    #: The error a trial past its time limit raises (Celery's soft time limit).
    time_limit_errors: tuple[type[BaseException], ...] = ()
    #: The error ``train_model`` raises when another run holds the model.
    model_elsewhere: tuple[type[BaseException], ...] = ()
    trial_running: TrialRunning = _nothing
    trial_ended: TrialEvent = _nothing
    #: Proposes ``uuid4().hex`` task ids (a test may fix them).
    new_task_id: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)

    # --- deciding what runs next

    def advance(self, search_id: str) -> None:
        """Start the search's clock, skip what the budget left, send the next trials, or the
        refit once no trial is in flight and none is left (see the module's docstring)."""
        lock = self.store.lock(search_id)
        if not lock.acquire():
            log.warning("search %s: its lock is busy; the sweep advances it", search_id)
            return
        try:
            self._advance(search_id)
        finally:
            try:
                lock.release()
            except Exception:  # expired meanwhile: whoever holds it now goes on
                log.warning("search %s: its lock had expired", search_id)

    def _advance(self, search_id: str) -> None:
        try:
            record = self.store.require(search_id)
        except NotFound:
            return
        if record["status"] in SEARCH_ENDED:
            self.store.forget_active(search_id)
            return
        if record.get("phase") == SearchPhase.REFITTING:
            return
        now = time.time()
        if record["status"] == SearchStatus.QUEUED:
            budget = record["time_budget_s"]
            started = self.store.update_if(
                search_id,
                (SearchStatus.QUEUED,),
                status=SearchStatus.RUNNING,
                phase=SearchPhase.TRIALS,
                started_at=now,
                deadline=now + budget if budget is not None else None,
            )
            if started is None:
                return
            record = started
        trials = self.store.trials(search_id)
        past = past_deadline(record, now)
        if past:
            trials = self._skip_unstarted(search_id, trials, now)
        in_flight = sum(1 for trial in trials if trial.status in TRIAL_IN_FLIGHT)
        planner = planner_for(record)
        proposed: list[Trial] = []
        if not past:
            room = self.settings.max_parallel_trials - in_flight
            while room > 0 and planner.has_more(len(trials)):
                estimator, params = planner.propose(trials)
                trial = Trial(
                    trial=len(trials),
                    estimator=estimator,
                    params=params,
                    task_id=self.new_task_id(),
                    queued_at=now,
                )
                trials.append(trial)
                proposed.append(trial)
                room -= 1
            self._send(record, proposed)
        if in_flight == 0 and not proposed and (past or not planner.has_more(len(trials))):
            self._begin_refit(search_id, now)

    def _skip_unstarted(self, search_id: str, trials: list[Trial], now: float) -> list[Trial]:
        """Trials still queued when the budget ran out never start: ``skipped``."""
        for trial in trials:
            if trial.status == TrialStatus.QUEUED:
                self.store.update_trial(
                    search_id,
                    trial.trial,
                    only_if=(TrialStatus.QUEUED,),
                    status=TrialStatus.SKIPPED,
                    finished_at=now,
                    error="not started: the search's time budget ran out",
                )
        return self.store.trials(search_id)

    def _send(self, record: SearchRecord, proposed: list[Trial]) -> None:
        """Record the proposed trials, then send each; those not sent are forgotten (they
        are proposed again by the next advance)."""
        search_id = record["id"]
        self.store.add_trials(search_id, proposed)
        sent = 0
        try:
            for trial in proposed:
                assert trial.task_id is not None
                self.send_trial(search_id, trial.trial, trial.task_id, record["trial_time_limit_s"])
                sent += 1
        finally:
            self.store.remove_trials(search_id, [trial.trial for trial in proposed[sent:]])

    def _begin_refit(self, search_id: str, now: float) -> None:
        """Every trial has ended: the best configuration is refitted, by a task of its own."""
        task_id = self.new_task_id()
        record = self.store.update_if(
            search_id,
            (SearchStatus.RUNNING,),
            phase=SearchPhase.REFITTING,
            trials_ended_at=now,
            refit_task_id=task_id,
        )
        if record is None:
            return
        try:
            self.send_refit(search_id, task_id)
        except BaseException:
            self.store.update(search_id, phase=SearchPhase.TRIALS)  # the sweep tries again
            raise

    # --- a trial

    def run_trial(
        self, search_id: str, number: int, progress: TrainingProgress = no_progress
    ) -> dict[str, Any]:
        """Run one trial unless its search no longer wants it; its row as it ended.

        :class:`TrialAlreadyRunning` if a live run holds it (this delivery is dropped).
        """
        try:
            record = self.store.require(search_id)
        except NotFound:
            return {"search_id": search_id, "trial": number, "status": "deleted"}
        trial = self.store.trial(search_id, number)
        if trial is None:
            return {"search_id": search_id, "trial": number, "status": "unknown"}
        if trial.status in TRIAL_ENDED:
            return self._outcome(search_id, trial)
        if record["status"] in SEARCH_ENDED:
            return self._outcome(search_id, self._cancel_trial(search_id, trial))
        if past_deadline(record, time.time()):
            ended = self._too_late(search_id, trial)
            self.advance(search_id)
            return self._outcome(search_id, ended)
        run = self.store.trial_leases.begin(trial_job(search_id, number))
        if run is None:
            raise TrialAlreadyRunning(trial_job(search_id, number))
        with run:
            trial = self.store.trial(search_id, number)
            if trial is None or trial.status in TRIAL_ENDED:
                run.finished = True
                return self._outcome(search_id, trial)
            limit = self.settings.max_trial_deliveries
            if run.delivery > limit:
                ended = self._end_trial(
                    search_id,
                    number,
                    TrialStatus.FAILED,
                    error=(
                        f"the trial was started {run.delivery - 1} times and its worker stopped "
                        f"each time before it finished (killed, out of memory, or shut down); "
                        f"[search] max_trial_deliveries = {limit} allows no more"
                    ),
                )
            else:
                ended = self._run(record, number, run.delivery, progress)
            run.finished = True
        self.advance(search_id)
        return self._outcome(search_id, ended)

    def _run(
        self, record: SearchRecord, number: int, delivery: int, progress: TrainingProgress
    ) -> Trial | None:
        """Cross-validate the trial's configuration, holding its lease; the row it ends as."""
        search_id = record["id"]
        started = self.store.update_trial(
            search_id,
            number,
            only_if=TRIAL_IN_FLIGHT,
            status=TrialStatus.RUNNING,
            started_at=time.time(),
            worker=process_name(),
            deliveries=delivery,
        )
        if started is None:  # cancelled meanwhile
            return self.store.trial(search_id, number)
        self.trial_running(1)
        try:
            return self._cross_validate(record, started, progress)
        finally:
            self.trial_running(-1)

    def _cross_validate(
        self, record: SearchRecord, started: Trial, progress: TrainingProgress
    ) -> Trial | None:
        """The trial's CV, recorded as it ended."""
        search_id, number = record["id"], started.trial
        try:
            progress(0.05, "loading the data set")
            rows = self.rows(record)
            progress(0.2, f"{record['cv']}-fold cross-validation of {started.estimator}")
            scores = cross_validate_trial(
                rows,
                started.estimator,
                seeded(started.estimator, started.params, record["random_state"]),
                record["scoring"],
                record["cv"],
                record["random_state"],
            )
        except NotFound:
            return self._end_trial(
                search_id, number, TrialStatus.FAILED, error="the search's data set was deleted"
            )
        except TooLarge as exc:
            return self._end_trial(search_id, number, TrialStatus.FAILED, error=exc.message)
        except self.time_limit_errors:
            limit = record["trial_time_limit_s"]
            return self._end_trial(
                search_id,
                number,
                TrialStatus.FAILED,
                error=f"stopped: over the trial time limit of {limit:g} s",
            )
        except Exception as exc:
            return self._end_trial(
                search_id, number, TrialStatus.FAILED, error=trial_error(search_id, number, exc)
            )
        return self._end_trial(
            search_id,
            number,
            TrialStatus.DONE,
            cv_scores=scores.scores,
            cv_mean=scores.mean,
            cv_std=scores.std,
            fit_seconds=scores.fit_seconds,
            predict_ms_per_row=scores.predict_ms_per_row,
            warnings=scores.warnings,
        )

    def _end_trial(self, search_id: str, number: int, status: str, **changes: Any) -> Trial | None:
        """Record how a trial in flight ended (a cancelled one stays cancelled)."""
        ended = self.store.update_trial(
            search_id,
            number,
            only_if=TRIAL_IN_FLIGHT,
            status=status,
            finished_at=time.time(),
            **changes,
        )
        if ended is not None:
            self.trial_ended(status)
            return ended
        return self.store.trial(search_id, number)

    def _cancel_trial(self, search_id: str, trial: Trial) -> Trial | None:
        """A delivery of a trial whose search ended (cancelled): it never runs."""
        return self._end_trial(
            search_id, trial.trial, TrialStatus.CANCELLED, error="the search was cancelled"
        )

    def _too_late(self, search_id: str, trial: Trial) -> Trial | None:
        """A delivery after the deadline: a trial never started is skipped; one whose worker
        died is failed (it may not start again)."""
        if trial.status == TrialStatus.QUEUED:
            return self._end_trial(
                search_id,
                trial.trial,
                TrialStatus.SKIPPED,
                error="not started: the search's time budget ran out",
            )
        return self._end_trial(
            search_id,
            trial.trial,
            TrialStatus.FAILED,
            error="its worker stopped, and the time budget ran out before it could run again",
        )

    def _outcome(self, search_id: str, trial: Trial | None) -> dict[str, Any]:
        if trial is None:
            return {"search_id": search_id, "status": "unknown"}
        return {
            "search_id": search_id,
            "trial": trial.trial,
            "status": trial.status,
            "cv_mean": trial.cv_mean,
            "error": trial.error,
        }

    def trial_stopped_by_time_limit(self, search_id: str, number: int) -> None:
        """A trial's process was killed at its hard time limit: record it failed, free its
        lease and go on (run in the worker's main process)."""
        try:
            record = self.store.require(search_id)
        except NotFound:
            return
        limit = record["trial_time_limit_s"]
        self._end_trial(
            search_id,
            number,
            TrialStatus.FAILED,
            error=f"stopped: over the trial time limit of {limit:g} s (its process was killed)",
        )
        job = trial_job(search_id, number)
        self.store.trial_leases.claim_expired(job, self.store.trial_leases.holder(job))
        self.advance(search_id)

    def rows(self, record: SearchRecord) -> SplitRows:
        """The search's data set, split for its trials (kept for the next trial here)."""
        kept = _ROWS.get(record["id"])
        if kept is not None:
            return kept
        dataset = self.datasets.catalog.get(record["dataset_id"])
        frame = dataset_files.load_frame(
            self.datasets.path(dataset),
            dataset["format"],
            dataset["string_columns"],
            dialect=dataset_files.dialect_of(dataset),
            limits=self.datasets.limits,
        )
        roles, _ = profile_roles(dataset.get("columns", []))
        rows = prepare(
            frame,
            record["target"],
            record["features"],
            record["task"],
            record["test_size"],
            roles,
        )
        _ROWS.clear()
        _ROWS[record["id"]] = rows
        return rows

    # --- the refit of the best configuration

    def refit(self, search_id: str, progress: TrainingProgress = no_progress) -> dict[str, Any]:
        """Refit the best trial's configuration as a model, score it on the held-out rows,
        draw the report: the search is ``done`` (``failed`` if no trial succeeded or the
        refit failed). :class:`RefitElsewhere` if another run trains the model now."""
        try:
            record = self.store.require(search_id)
        except NotFound:
            return {"search_id": search_id, "status": "deleted"}
        if record["status"] in SEARCH_ENDED or record.get("phase") != SearchPhase.REFITTING:
            return self._search_outcome(record)
        run = self.store.refit_leases.begin(search_id)
        if run is None:
            raise RefitElsewhere(search_id)
        with run:
            record = self.store.require(search_id)
            if record["status"] in SEARCH_ENDED:
                run.finished = True
                return self._search_outcome(record)
            limit = self.settings.max_trial_deliveries
            if run.delivery > limit:
                record = self._fail(
                    search_id,
                    f"refitting the best configuration was started {run.delivery - 1} times and "
                    f"its worker stopped each time; [search] max_trial_deliveries = {limit} "
                    "allows no more",
                )
            else:
                try:
                    record = self._refit(record, progress)
                except RefitElsewhere:
                    run.finished = True
                    raise
            run.finished = True
        return self._search_outcome(record)

    def _refit(self, record: SearchRecord, progress: TrainingProgress) -> SearchRecord:
        search_id = record["id"]
        trials = self.store.trials(search_id)
        ranked = leaderboard(trials)
        best = ranked[0] if ranked and ranked[0].status == TrialStatus.DONE else None
        if best is None:
            errors = [trial.error for trial in trials if trial.error]
            why = f"; the first error: {errors[0]}" if errors else ""
            return self._fail(search_id, f"no trial succeeded ({len(trials)} ran){why}")
        model_id = record.get("best_model_id")
        if model_id is None:
            model_id = self.models.create(self.best_model(record, best))["id"]
            record = self.store.update(search_id, best_model_id=model_id)
        assert self.train_model is not None, "the refit task wires train_model"
        progress(0.05, f"refitting trial {best.trial} ({best.estimator}) as model {model_id}")
        try:
            outcome = self.train_model(model_id, progress)
        except self.model_elsewhere:
            raise RefitElsewhere(search_id) from None
        except JobFailed as exc:
            return self._fail(search_id, f"refitting the best configuration failed: {exc}")
        if outcome.get("status") != ModelStatus.READY:
            return self._fail(
                search_id, f"the best model {model_id} was deleted while it was refitted"
            )
        progress(0.97, "scoring on the held-out rows and drawing the search's report")
        test_score: float | None = None
        try:
            bundle = self.models.load_bundle(model_id)
            test_score = held_out_score(bundle.pipeline, self.rows(record), record["scoring"])
        except Exception:
            log.exception("search %s: the held-out score could not be computed", search_id)
        search_report.render_and_store(self.store.reports, record, trials)
        done = self.store.update_if(
            search_id,
            (SearchStatus.RUNNING,),
            status=SearchStatus.DONE,
            finished_at=time.time(),
            test_score=test_score,
        )
        _ROWS.pop(search_id, None)
        return done if done is not None else self.store.require(search_id)

    def best_model(self, record: SearchRecord, best: Trial) -> ModelRecord:
        """The record of the model the best configuration becomes (``queued``)."""
        name = f"{record['name']}: trial {best.trial}, {best.estimator}"
        return {
            "id": Catalog.new_id(),
            "task_id": self.new_task_id(),
            "name": name[:200],
            "owner": record["owner"],
            "owner_id": record["owner_id"],
            "status": ModelStatus.QUEUED,
            "source": ModelSource.TRAINED,
            "dataset_id": record["dataset_id"],
            "target": record["target"],
            "features": record["features"],
            "estimator": best.estimator,
            "task": record["task"],
            "params": seeded(best.estimator, best.params, record["random_state"]),
            "test_size": record["test_size"],
            "cv": None,
            "callback_url": None,
            "compile": True,
            "register_as": record["register_as"],
        }

    def _fail(self, search_id: str, error: str) -> SearchRecord:
        """The search ends ``failed`` with ``error`` (unless it ended otherwise meanwhile)."""
        now = time.time()
        record = self.store.require(search_id)
        changes: dict[str, Any] = {
            "status": SearchStatus.FAILED,
            "error": error,
            "finished_at": now,
        }
        if "trials_ended_at" not in record:
            changes["trials_ended_at"] = now
        failed = self.store.update_if(
            search_id, (SearchStatus.QUEUED, SearchStatus.RUNNING), **changes
        )
        _ROWS.pop(search_id, None)
        return failed if failed is not None else self.store.require(search_id)

    def _search_outcome(self, record: SearchRecord) -> dict[str, Any]:
        return {
            "search_id": record["id"],
            "status": record["status"],
            "best_model_id": record.get("best_model_id"),
            "test_score": record.get("test_score"),
            "error": record.get("error"),
        }

    # --- the sweep

    def sweep(self) -> dict[str, list[str]]:
        """Send again the trials and refits whose worker died, and advance every active
        search (its next trials, its deadline, a step lost with a worker); what was done."""
        resent = []
        for job in self.store.trial_leases.expired():
            search_id, number = parse_trial_job(job)
            if self._resend_trial(search_id, number, job):
                resent.append(job)
        refits = []
        for search_id in self.store.refit_leases.expired():
            try:
                record = self.store.require(search_id)
            except NotFound:
                continue
            if record["status"] in SEARCH_ENDED or record.get("phase") != SearchPhase.REFITTING:
                continue
            log.warning("search %s: its refit stopped before finishing; sent again", search_id)
            task_id = self.new_task_id()
            self.store.update(search_id, refit_task_id=task_id)
            try:
                self.send_refit(search_id, task_id)
            except BaseException:
                self.store.refit_leases.mark_running(search_id)
                raise
            refits.append(search_id)
        active = self.store.active()
        for search_id in active:
            self.advance(search_id)
        return {"trials": resent, "refits": refits, "advanced": active}

    def _resend_trial(self, search_id: str, number: int, job: str) -> bool:
        """A trial whose run died: sent again (a new task id), unless it or its search ended."""
        try:
            record = self.store.require(search_id)
        except NotFound:
            return False
        trial = self.store.trial(search_id, number)
        if trial is None or trial.status in TRIAL_ENDED:
            return False
        if record["status"] in SEARCH_ENDED:
            self._cancel_trial(search_id, trial)
            return False
        log.warning("search %s: trial %d stopped before finishing; sent again", search_id, number)
        task_id = self.new_task_id()
        self.store.update_trial(search_id, number, only_if=TRIAL_IN_FLIGHT, task_id=task_id)
        try:
            self.send_trial(search_id, number, task_id, record["trial_time_limit_s"])
        except BaseException:
            self.store.trial_leases.mark_running(job)
            raise
        return True
