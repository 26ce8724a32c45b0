"""Hyperparameter searches in Redis: the search's record, its trials, their leases.

A search (``POST /resource/searches``) is one record in the catalog of kind
``search`` (``mlservice:search:<id>``, owned by an account like data sets and
models) and one Redis hash of its trials, ``mlservice:search:<id>:trials``
(trial number -> :class:`Trial` as JSON): the leaderboard. The searches not
yet ended are in the set ``mlservice:searches:active``, which the sweep walks.

Each trial is a Celery task of its own, run by whichever worker takes it
(:mod:`mlservice.training.search_runs`). A running trial holds a lease
(:mod:`.leases`, kind ``search-trial``, job ``<search id>.<number>``), and so
does the step that refits the best configuration (kind ``search-refit``, job
the search's id), so that the work of a worker that died is found and sent
again within seconds. Deciding which trials to send next is done under a
per-search Redis lock (``mlservice:search:<id>:lock``), by whichever process
gets there first: the step that starts the search, the end of each trial, the
sweep.

Every change that depends on a status (a trial that ends, a search that is
cancelled while its last trial ends) is a WATCH/MULTI transaction that checks
it, so a cancelled trial is never written back as done, nor the reverse.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

import msgspec
import redis
from redis.lock import Lock

from ..errors import NotFound
from ..redis_client import key, text
from ..security import Identity
from .artifacts import ArtifactStore
from .catalog import Catalog
from .leases import Leases
from .report_files import ReportFiles

#: The searches that have not ended (queued, running): what the sweep looks at.
ACTIVE_KEY = key("searches", "active")
#: Trials that started and have not ended, scored by start time (their leases' running set).
TRIALS_RUNNING_KEY = key("searches", "trials", "running")
#: Refits of a search's best configuration that started and have not ended.
REFITS_RUNNING_KEY = key("searches", "refits", "running")
#: How long one process may hold a search's lock (it decides the next trials in milliseconds;
#: a TPE proposal takes a little longer), and how long another waits for it.
LOCK_SECONDS = 60.0
LOCK_WAIT_SECONDS = 30.0


class SearchStatus(StrEnum):
    """``queued`` → ``running`` → ``done``, ``failed`` or ``cancelled``."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: A search in one of these is over: nothing more runs for it.
SEARCH_ENDED = frozenset({SearchStatus.DONE, SearchStatus.FAILED, SearchStatus.CANCELLED})


class SearchPhase(StrEnum):
    """What a running search is doing: running trials, then refitting the best one."""

    TRIALS = "trials"
    REFITTING = "refitting"


class TrialStatus(StrEnum):
    """``queued`` → ``running`` → ``done`` or ``failed``; ``cancelled`` with its search;
    ``skipped`` when the time budget ran out before it started."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


#: A trial in one of these will not change again.
TRIAL_ENDED = frozenset(
    {TrialStatus.DONE, TrialStatus.FAILED, TrialStatus.CANCELLED, TrialStatus.SKIPPED}
)
#: A trial in one of these still counts against the search's parallel trials.
TRIAL_IN_FLIGHT = frozenset({TrialStatus.QUEUED, TrialStatus.RUNNING})


class Trial(msgspec.Struct, kw_only=True):
    """One configuration tried: a row of the leaderboard (the contract's ``SearchTrial``)."""

    #: The trial's number in its search, from 0 in the order they were proposed.
    trial: int
    estimator: str
    #: The searched parameters (the estimator's seed, set from the search's
    #: ``random_state``, is not among them unless the space searched it).
    params: dict[str, Any]
    status: str = TrialStatus.QUEUED.value
    #: Cross-validation on the training split: each fold's score, their mean and spread.
    cv_scores: list[float] | None = None
    cv_mean: float | None = None
    cv_std: float | None = None
    #: Mean seconds to fit one fold.
    fit_seconds: float | None = None
    #: Milliseconds to predict (and score) one held-out row of a fold.
    predict_ms_per_row: float | None = None
    error: str | None = None
    #: Warnings scikit-learn raised while fitting (each once, with how many times).
    warnings: list[str] = msgspec.field(default_factory=list)
    #: ``<host>:<pid>`` of the process that ran it last.
    worker: str | None = None
    #: How many times it started (more than 1: a worker died under it).
    deliveries: int = 0
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    #: The Celery task that runs it now (not shown: nobody follows it by id).
    task_id: str | None = None


class TrialCounts(TypedDict):
    """How many trials are in each state, and how many the search will run in all."""

    queued: int
    running: int
    done: int
    failed: int
    cancelled: int
    skipped: int
    #: The trials the search plans (a grid's size, ``max_trials``); ``null`` when only
    #: its time budget bounds it.
    total: int | None


class SearchRecord(TypedDict):
    """A search: its request, resolved (the estimators and their spaces), and its state."""

    id: str
    name: str
    owner: str  # the user name, for people to read
    owner_id: str  # the account id, what ownership is keyed by
    status: str  # a SearchStatus
    created_at: NotRequired[float]
    # The request, with its defaults filled in.
    dataset_id: str
    target: str
    features: list[str] | None
    test_size: float
    cv: int
    scoring: str
    random_state: int
    strategy: str
    automl: bool
    task: str  # classification or regression
    #: estimator -> parameter -> a list of values or a distribution.
    space: dict[str, dict[str, Any]]
    max_trials: int | None
    time_budget_s: float | None
    trial_time_limit_s: float
    register_as: str | None
    #: How many configurations the random sampler draws from (fixed at creation, so the
    #: same request draws the same ones), or the grid's size.
    plan_size: int
    trials_total: int | None
    # Its run.
    phase: NotRequired[str]  # a SearchPhase, while running
    started_at: NotRequired[float]
    deadline: NotRequired[float | None]
    trials_ended_at: NotRequired[float]
    finished_at: NotRequired[float]
    best_model_id: NotRequired[str | None]
    #: The Celery task refitting the best configuration (not shown).
    refit_task_id: NotRequired[str]
    #: The best configuration's score (``scoring``) on the held-out split, once refitted.
    test_score: NotRequired[float | None]
    error: NotRequired[str]


class SearchView(SearchRecord):
    """What ``GET /resource/searches/{id}`` answers: the record, counts, best and leaderboard."""

    trials: TrialCounts
    #: Seconds since it started, until its trials ended (``null`` while queued).
    elapsed_s: float | None
    #: The best trial so far (``null`` until one is done).
    best: Trial | None
    #: Every trial, done ones by CV score (best first), then the others by number.
    leaderboard: NotRequired[list[Trial]]


def trial_job(search_id: str, number: int) -> str:
    """The lease job id of one trial."""
    return f"{search_id}.{number}"


def parse_trial_job(job_id: str) -> tuple[str, int]:
    """(search id, trial number) of a trial's lease job id."""
    search_id, _, number = job_id.rpartition(".")
    return search_id, int(number)


def leaderboard(trials: Iterable[Trial]) -> list[Trial]:
    """Done trials by CV mean (best first, then by number), then every other by number.

    Scores are scikit-learn scorers', where greater is always better (``neg_*`` errors).
    """
    trials = list(trials)
    done = [t for t in trials if t.status == TrialStatus.DONE and t.cv_mean is not None]
    others = sorted((t for t in trials if t not in done), key=lambda t: t.trial)
    return sorted(done, key=lambda t: (-(t.cv_mean or 0.0), t.trial)) + others


def counts(record: SearchRecord, trials: Sequence[Trial]) -> TrialCounts:
    """How many trials are in each state."""
    found = {status: 0 for status in TrialStatus}
    for trial in trials:
        found[TrialStatus(trial.status)] += 1
    return {
        "queued": found[TrialStatus.QUEUED],
        "running": found[TrialStatus.RUNNING],
        "done": found[TrialStatus.DONE],
        "failed": found[TrialStatus.FAILED],
        "cancelled": found[TrialStatus.CANCELLED],
        "skipped": found[TrialStatus.SKIPPED],
        "total": record["trials_total"],
    }


def view(record: SearchRecord, trials: Sequence[Trial], with_leaderboard: bool = True) -> Any:
    """The search as the API shows it (:class:`SearchView`), as plain JSON values."""
    ranked = leaderboard(trials)
    best = ranked[0] if ranked and ranked[0].status == TrialStatus.DONE else None
    started = record.get("started_at")
    elapsed = None
    if started is not None:
        until = record.get("trials_ended_at") or time.time()
        elapsed = round(until - started, 3)
    shown: dict[str, Any] = dict(record)
    shown.pop("refit_task_id", None)
    shown |= {"trials": counts(record, trials), "elapsed_s": elapsed, "best": _shown(best)}
    if with_leaderboard:
        shown["leaderboard"] = [_shown(trial) for trial in ranked]
    return shown


def _shown(trial: Trial | None) -> dict[str, Any] | None:
    """A trial as JSON, without its task id."""
    if trial is None:
        return None
    shown: dict[str, Any] = msgspec.to_builtins(trial)
    shown.pop("task_id", None)
    return shown


class SearchReportFiles(ReportFiles):
    """A search's report files: ``searches/<id>/report/`` (plots and ``report.json``)."""

    KIND = "searches"


class SearchStore:
    """Every search's record, trials, leases and report files (see the module's docstring)."""

    def __init__(self, redis_client: redis.Redis, artifacts: ArtifactStore) -> None:
        self.redis = redis_client
        self.catalog: Catalog[SearchRecord] = Catalog(redis_client, "search", SearchRecord)
        #: Running trials' leases (job ``<search id>.<number>``).
        self.trial_leases = Leases(redis_client, "search-trial", TRIALS_RUNNING_KEY)
        #: Running refits' leases (job: the search's id).
        self.refit_leases = Leases(redis_client, "search-refit", REFITS_RUNNING_KEY)
        self.reports = SearchReportFiles(artifacts)
        self._decoder = msgspec.json.Decoder(Trial)

    # --- the search's record

    def create(self, record: SearchRecord) -> SearchRecord:
        """Store a new search (``queued``) and make it active."""
        created = self.catalog.create(record)
        self.redis.sadd(ACTIVE_KEY, record["id"])
        return created

    def get(self, search_id: str, viewer: Identity | None = None) -> SearchRecord:
        """The search; :class:`NotFound` if missing or another account's (admins see all)."""
        return self.catalog.get(search_id, viewer)

    def update(self, search_id: str, **changes: Any) -> SearchRecord:
        """Merge ``changes`` into the record (whatever its status)."""
        return self.catalog.update(search_id, **changes)

    def update_if(
        self, search_id: str, statuses: Iterable[str], **changes: Any
    ) -> SearchRecord | None:
        """Merge ``changes`` only while the search's status is one of ``statuses``; the
        record changed, or ``None`` if its status was another (or it is gone)."""
        allowed = set(statuses)
        record_key = self.catalog.key(search_id)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(record_key)
                    raw = pipe.get(record_key)
                    if raw is None:
                        return None
                    record = json.loads(raw)
                    if record["status"] not in allowed:
                        pipe.reset()
                        return None
                    record |= changes
                    pipe.multi()
                    pipe.set(record_key, json.dumps(record))
                    pipe.execute()
                    if record["status"] in SEARCH_ENDED:
                        self.redis.srem(ACTIVE_KEY, search_id)
                    return self.catalog.parse(json.dumps(record), search_id)
                except redis.WatchError:
                    continue

    def page(self, viewer: Identity, page: int, per_page: int) -> tuple[list[SearchRecord], int]:
        """One page of the viewer's searches (admins: everyone's), newest first."""
        return self.catalog.list(viewer, page, per_page)

    def active(self) -> list[str]:
        """The searches not ended yet."""
        return sorted(str(text(member)) for member in self.redis.smembers(ACTIVE_KEY))

    def forget_active(self, search_id: str) -> None:
        """The search is gone or over: the sweep need not look at it again."""
        self.redis.srem(ACTIVE_KEY, search_id)

    def lock(self, search_id: str) -> Lock:
        """The lock under which the search's next trials are decided."""
        return self.redis.lock(
            key("search", search_id, "lock"),
            timeout=LOCK_SECONDS,
            blocking_timeout=LOCK_WAIT_SECONDS,
        )

    # --- its trials

    def _trials_key(self, search_id: str) -> str:
        return key("search", search_id, "trials")

    def trials(self, search_id: str) -> list[Trial]:
        """Every trial of the search, by number."""
        raws = self.redis.hvals(self._trials_key(search_id))
        return sorted((self._decoder.decode(raw) for raw in raws), key=lambda t: t.trial)

    def trial(self, search_id: str, number: int) -> Trial | None:
        """One trial, or ``None``."""
        raw = self.redis.hget(self._trials_key(search_id), str(number))
        return self._decoder.decode(raw) if raw is not None else None

    def add_trials(self, search_id: str, trials: Sequence[Trial]) -> None:
        """Record newly proposed trials (``queued``)."""
        pipe = self.redis.pipeline(transaction=True)
        for trial in trials:
            pipe.hset(self._trials_key(search_id), str(trial.trial), msgspec.json.encode(trial))
        pipe.execute()

    def remove_trials(self, search_id: str, numbers: Sequence[int]) -> None:
        """Forget proposed trials that could not be sent (they are proposed again)."""
        if numbers:
            self.redis.hdel(self._trials_key(search_id), *(str(n) for n in numbers))

    def update_trial(
        self,
        search_id: str,
        number: int,
        only_if: Iterable[str] | None = None,
        **changes: Any,
    ) -> Trial | None:
        """Change one trial, only while its status is one of ``only_if`` (any, if ``None``);
        the trial changed, or ``None`` if it was in another status (or is gone)."""
        allowed = set(only_if) if only_if is not None else None
        trials_key = self._trials_key(search_id)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(trials_key)
                    raw = pipe.hget(trials_key, str(number))
                    if raw is None:
                        pipe.reset()
                        return None
                    trial = self._decoder.decode(raw)
                    if allowed is not None and trial.status not in allowed:
                        pipe.reset()
                        return None
                    changed = msgspec.structs.replace(trial, **changes)
                    pipe.multi()
                    pipe.hset(trials_key, str(number), msgspec.json.encode(changed))
                    pipe.execute()
                    return changed
                except redis.WatchError:
                    continue

    # --- cancelling

    def cancel(self, search_id: str) -> tuple[SearchRecord, list[str]] | None:
        """Cancel a search that has not ended: it is ``cancelled``, and so is every trial
        queued or running (the leaderboard keeps the others). The cancelled record and
        the Celery tasks to stop (its trials', its refit's); ``None`` if it had ended."""
        now = time.time()
        record = self.update_if(
            search_id,
            (SearchStatus.QUEUED, SearchStatus.RUNNING),
            status=SearchStatus.CANCELLED,
            finished_at=now,
        )
        if record is None:
            return None
        if "trials_ended_at" not in record and record.get("started_at") is not None:
            record = self.update(search_id, trials_ended_at=now)
        tasks = [record["refit_task_id"]] if record.get("refit_task_id") else []
        for trial in self.trials(search_id):
            stopped = self.update_trial(
                search_id,
                trial.trial,
                only_if=TRIAL_IN_FLIGHT,
                status=TrialStatus.CANCELLED,
                finished_at=now,
                error="the search was cancelled",
            )
            if stopped is not None and stopped.task_id:
                tasks.append(stopped.task_id)
        return record, tasks

    def require(self, search_id: str) -> SearchRecord:
        """The search, whoever owns it (workers); :class:`NotFound` if it is gone."""
        try:
            return self.catalog.get(search_id)
        except NotFound:
            self.forget_active(search_id)
            raise
