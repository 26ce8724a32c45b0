"""Which configuration a search's next trial tries: grid, random draws, or Optuna's TPE.

A planner is rebuilt from the search's record (and, for TPE, its trials)
each time trials are proposed, and trial ``n`` is always the ``n``-th
proposal, so a worker that died, or another process that proposes the next
trials, changes nothing:

* ``grid``: scikit-learn's :class:`~sklearn.model_selection.ParameterGrid`
  over each estimator's values (a distribution gives its ends and middle),
  trial ``n`` its ``n``-th point;
* ``random``: :class:`~sklearn.model_selection.ParameterSampler` drawing the
  search's ``plan_size`` configurations from its ``random_state`` (lists
  uniformly, distributions from scipy.stats: uniform, log-uniform, integers),
  trial ``n`` the ``n``-th draw: the same request draws the same trials;
* ``tpe``: an Optuna study rebuilt in memory from the trials so far (done
  ones with their CV score, failed ones as failed, those queued or running
  as running, which Optuna's constant liar keeps it from proposing again),
  asked for one more with a sampler seeded by the search's ``random_state``
  and the trial's number: deterministic given the seed and the trials.

With AutoML the estimator is a parameter too (chosen uniformly by grid and
random, by TPE among the others); each estimator's parameters only count for
trials of that estimator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState, create_trial
from scipy import stats
from sklearn.model_selection import ParameterGrid, ParameterSampler

from ..store.search_records import SearchRecord, Trial, TrialStatus
from .search_space import Distribution, Spaces, from_json, grid_values

#: The key under which a planner's configurations name their estimator.
ESTIMATOR = "estimator"


class Planner(Protocol):
    """Proposes a search's trials, in order."""

    def has_more(self, proposed: int) -> bool:
        """Whether a trial after the ``proposed`` ones can be proposed."""

    def propose(self, trials: Sequence[Trial]) -> tuple[str, dict[str, Any]]:
        """The estimator and parameters of trial ``len(trials)``."""


def plain(value: Any) -> Any:
    """A drawn value as the plain Python value JSON keeps (numpy scalars included)."""
    return value.item() if isinstance(value, np.generic) else value


def _split(configuration: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A grid point or a draw as (estimator, its parameters)."""
    params = {name: plain(value) for name, value in configuration.items() if name != ESTIMATOR}
    return str(configuration[ESTIMATOR]), params


@dataclass(frozen=True)
class IntLogUniform:
    """Integers from ``low`` to ``high`` drawn uniformly on a log scale (scipy.stats has
    none): ``floor`` of a log-uniform draw over ``[low, high + 1)``."""

    low: int
    high: int

    def rvs(self, random_state: Any = None) -> int:
        drawn = stats.loguniform(self.low, self.high + 1).rvs(random_state=random_state)
        return min(self.high, int(math.floor(drawn)))


def scipy_distribution(spec: Distribution) -> Any:
    """The object ParameterSampler draws a distribution's values from (it calls ``rvs``)."""
    low, high = spec.low, spec.high
    if spec.type == "int":
        if spec.log:
            return IntLogUniform(int(low), int(high))
        return stats.randint(int(low), int(high) + 1)
    if spec.log:
        return stats.loguniform(low, high)
    return stats.uniform(low, high - low)


class GridPlanner:
    """Every configuration of each estimator's grid, in scikit-learn's order."""

    def __init__(self, spaces: Spaces, total: int) -> None:
        grids = [
            {ESTIMATOR: [name], **{param: grid_values(spec) for param, spec in space.items()}}
            for name, space in spaces.items()
        ]
        self.grid = ParameterGrid(grids)
        self.total = total

    def has_more(self, proposed: int) -> bool:
        return proposed < self.total

    def propose(self, trials: Sequence[Trial]) -> tuple[str, dict[str, Any]]:
        return _split(self.grid[len(trials)])


class RandomPlanner:
    """``plan_size`` draws from ``random_state``, made once: trial ``n`` is draw ``n``."""

    def __init__(
        self, spaces: Spaces, plan_size: int, random_state: int, total: int | None
    ) -> None:
        distributions = [
            {
                ESTIMATOR: [name],
                **{
                    param: scipy_distribution(spec) if isinstance(spec, Distribution) else spec
                    for param, spec in space.items()
                },
            }
            for name, space in spaces.items()
        ]
        sampler = ParameterSampler(distributions, n_iter=plan_size, random_state=random_state)
        self.draws = [_split(configuration) for configuration in sampler]
        self.total = min(len(self.draws), total) if total is not None else len(self.draws)

    def has_more(self, proposed: int) -> bool:
        return proposed < self.total

    def propose(self, trials: Sequence[Trial]) -> tuple[str, dict[str, Any]]:
        return self.draws[len(trials)]


def seed_for(random_state: int, number: int) -> int:
    """The TPE sampler's seed for trial ``number``: a function of both, so two trials never
    draw alike from a fresh sampler."""
    return int(np.random.SeedSequence([random_state, number]).generate_state(1)[0])


class TpePlanner:
    """Optuna's TPE sampler, over a study rebuilt from the trials so far."""

    def __init__(self, spaces: Spaces, plan_size: int, random_state: int) -> None:
        self.spaces = spaces
        self.plan_size = plan_size
        self.random_state = random_state
        self.names = list(spaces)

    def has_more(self, proposed: int) -> bool:
        return proposed < self.plan_size

    def _key(self, name: str, param: str) -> str:
        return f"{name}:{param}"

    def distributions(self, name: str) -> dict[str, BaseDistribution]:
        """Optuna's distributions of one estimator's parameters (a list: its indices)."""
        found: dict[str, BaseDistribution] = {}
        for param, spec in self.spaces[name].items():
            key = self._key(name, param)
            if isinstance(spec, Distribution):
                if spec.type == "int":
                    found[key] = IntDistribution(int(spec.low), int(spec.high), log=spec.log)
                else:
                    found[key] = FloatDistribution(spec.low, spec.high, log=spec.log)
            else:
                found[key] = CategoricalDistribution(list(range(len(spec))))
        return found

    def _as_optuna(self, trial: Trial) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
        """A trial's configuration as Optuna's parameters and their distributions."""
        params: dict[str, Any] = {}
        distributions: dict[str, BaseDistribution] = {}
        if len(self.names) > 1:
            params[ESTIMATOR] = trial.estimator
            distributions[ESTIMATOR] = CategoricalDistribution(self.names)
        own = self.distributions(trial.estimator)
        for param, value in trial.params.items():
            spec = self.spaces[trial.estimator][param]
            key = self._key(trial.estimator, param)
            params[key] = value if isinstance(spec, Distribution) else spec.index(value)
            distributions[key] = own[key]
        return params, distributions

    def study(self, trials: Sequence[Trial]) -> optuna.Study:
        """A study in memory holding the trials so far, with a TPE sampler for the next."""
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=seed_for(self.random_state, len(trials)))
        study = optuna.create_study(direction="maximize", sampler=sampler)
        for trial in trials:
            if trial.estimator not in self.spaces:
                continue
            params, distributions = self._as_optuna(trial)
            if trial.status == TrialStatus.DONE and trial.cv_mean is not None:
                state, value = TrialState.COMPLETE, trial.cv_mean
            elif trial.status == TrialStatus.FAILED:
                state, value = TrialState.FAIL, None
            elif trial.status in (TrialStatus.QUEUED, TrialStatus.RUNNING):
                state, value = TrialState.RUNNING, None
            else:
                continue  # cancelled or skipped: never ran
            study.add_trial(
                create_trial(state=state, value=value, params=params, distributions=distributions)
            )
        return study

    def propose(self, trials: Sequence[Trial]) -> tuple[str, dict[str, Any]]:
        asked = self.study(trials).ask()
        name = self.names[0]
        if len(self.names) > 1:
            name = str(asked.suggest_categorical(ESTIMATOR, self.names))
        params: dict[str, Any] = {}
        for param, spec in self.spaces[name].items():
            key = self._key(name, param)
            if isinstance(spec, Distribution):
                if spec.type == "int":
                    value: Any = asked.suggest_int(key, int(spec.low), int(spec.high), log=spec.log)
                else:
                    value = asked.suggest_float(key, spec.low, spec.high, log=spec.log)
            else:
                value = spec[int(asked.suggest_categorical(key, list(range(len(spec)))))]
            params[param] = plain(value)
        return name, params


#: Grid and random planners of the searches this process proposed for lately: what they
#: plan never changes, and a random one draws all its configurations when made.
_PLANNERS: dict[str, Planner] = {}
_KEPT_PLANNERS = 8


def planner_for(record: SearchRecord) -> Planner:
    """The planner of a search, from its record."""
    kept = _PLANNERS.get(record["id"])
    if kept is not None:
        return kept
    planner = _new_planner(record)
    if not isinstance(planner, TpePlanner):
        if len(_PLANNERS) >= _KEPT_PLANNERS:
            _PLANNERS.pop(next(iter(_PLANNERS)))
        _PLANNERS[record["id"]] = planner
    return planner


def _new_planner(record: SearchRecord) -> Planner:
    spaces = from_json(record["space"])
    strategy = record["strategy"]
    if strategy == "grid":
        return GridPlanner(spaces, record["trials_total"] or 0)
    if strategy == "random":
        return RandomPlanner(
            spaces, record["plan_size"], record["random_state"], record["trials_total"]
        )
    return TpePlanner(spaces, record["plan_size"], record["random_state"])
