"""A search's parts without servers: the split a training makes, the planners' proposals (the
same again for the same seed), a trial's cross-validation, the leaderboard's order, the report."""

from __future__ import annotations

import json

import pytest

from mlservice.config import LimitsSettings
from mlservice.errors import BadRequest
from mlservice.store.artifacts import ArtifactStore
from mlservice.store.search_records import SearchReportFiles, Trial, leaderboard
from mlservice.training import fitting, search_plans, search_report, search_space, search_trials
from mlservice.training.search_space import Distribution
from tests.data import make_customers


@pytest.fixture(scope="module")
def customers():
    return make_customers.customers()


@pytest.mark.parametrize(
    "target, estimator, task",
    [("plan", "LogisticRegression", "classification"), ("income", "Ridge", "regression")],
)
def test_trials_split_the_rows_as_the_refitted_training_does(customers, target, estimator, task):
    """The refit (Trainer -> fitting.train) is scored on rows no trial has seen."""
    fitted = fitting.train(customers, target, estimator, {}, test_size=0.3)
    rows = search_trials.prepare(customers, target, None, task, 0.3)
    assert list(rows.x_test.index) == list(fitted.held_out.index)
    assert rows.schema == fitted.bundle.schema
    assert set(rows.x_train.index).isdisjoint(rows.x_test.index)


def record(strategy: str, space: dict, random_state: int = 0, **fields) -> dict:
    spaces = {name: {p: s for p, s in params.items()} for name, params in space.items()}
    size = search_space.grid_size(spaces)
    base = {
        "id": f"{strategy}-{random_state}-{len(json.dumps(search_space.as_json(spaces)))}",
        "space": search_space.as_json(spaces),
        "strategy": strategy,
        "random_state": random_state,
        "plan_size": fields.pop("plan_size", size),
        "trials_total": fields.pop("trials_total", size),
    }
    return base | fields


FOREST = {
    "RandomForestClassifier": {
        "n_estimators": Distribution(type="int", low=10, high=200),
        "max_depth": [None, 4, 8],
        "min_samples_leaf": Distribution(type="int", low=1, high=50, log=True),
    },
    "LogisticRegression": {"C": Distribution(type="float", low=0.001, high=10, log=True)},
}


def test_grid_points_are_each_value_of_each_list_and_three_of_a_distribution():
    assert search_space.grid_values(Distribution(type="float", low=0.01, high=1, log=True)) == [
        0.01,
        pytest.approx(0.1),
        1.0,
    ]
    assert search_space.grid_values(Distribution(type="int", low=1, high=2)) == [1, 2]
    assert search_space.grid_size(FOREST) == 3 * 3 * 3 + 3
    planner = search_plans.planner_for(record("grid", FOREST))
    proposals = [planner.propose([None] * n) for n in range(30)]
    assert len({json.dumps(p, sort_keys=True) for p in proposals}) == 30
    assert proposals[0] == (
        "RandomForestClassifier",
        {"max_depth": None, "min_samples_leaf": 1, "n_estimators": 10},
    )
    assert proposals[-1] == ("LogisticRegression", {"C": 10.0})
    assert not planner.has_more(30)


def test_random_draws_are_the_same_for_the_same_seed_and_plain_values():
    def draws(seed: int) -> list:
        planner = search_plans._new_planner(
            record("random", FOREST, seed, plan_size=20, trials_total=20)
        )
        return [planner.propose([None] * n) for n in range(20)]

    first, again, other = draws(3), draws(3), draws(4)
    assert first == again
    assert first != other
    for estimator, params in first:
        for value in params.values():
            assert value is None or type(value) in (int, float)
        if estimator == "RandomForestClassifier":
            assert 10 <= params["n_estimators"] <= 200
            assert 1 <= params["min_samples_leaf"] <= 50
    assert {estimator for estimator, _ in first} == set(FOREST)


def test_tpe_proposes_the_same_for_the_same_seed_and_trials():
    def run(seed: int) -> list:
        planner = search_plans._new_planner(
            record("tpe", FOREST, seed, plan_size=12, trials_total=12)
        )
        trials: list[Trial] = []
        for number in range(12):
            estimator, params = planner.propose(trials)
            score = params.get("C", 1.0) / 10 if estimator == "LogisticRegression" else 0.5
            trials.append(
                Trial(
                    trial=number, estimator=estimator, params=params, status="done", cv_mean=score
                )
            )
        return [(t.estimator, t.params) for t in trials]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_a_trial_scores_the_same_again_and_a_bad_combination_raises(customers):
    rows = search_trials.prepare(customers, "plan", ["age", "city"], "classification", 0.25)
    params = search_trials.seeded("RandomForestClassifier", {"n_estimators": 10}, 5)
    assert params == {"n_estimators": 10, "random_state": 5}
    first = search_trials.cross_validate_trial(
        rows, "RandomForestClassifier", params, "accuracy", 4, 5
    )
    again = search_trials.cross_validate_trial(
        rows, "RandomForestClassifier", params, "accuracy", 4, 5
    )
    assert first.scores == again.scores and len(first.scores) == 4
    assert first.mean == pytest.approx(sum(first.scores) / 4)
    with pytest.raises(ValueError, match="l1"):
        search_trials.cross_validate_trial(
            rows, "LogisticRegression", {"penalty": "l1", "solver": "lbfgs"}, "accuracy", 3, 0
        )


def test_a_space_refuses_bad_values_naming_the_parameter():
    limits = LimitsSettings()
    search_space.check_space("SVC", {"kernel": ["rbf", "linear"], "C": [1.0]}, limits)
    with pytest.raises(BadRequest, match=r"space of SVC: parameter 'kernel': .*'kernel' parameter"):
        search_space.check_space("SVC", {"kernel": ["rbf", "curvy"]}, limits)
    with pytest.raises(
        BadRequest, match=r"parameter 'n_estimators': .*\[limits\] max_n_estimators"
    ):
        search_space.check_space(
            "RandomForestClassifier",
            {"n_estimators": Distribution(type="int", low=10, high=10**6)},
            limits,
        )


def test_the_leaderboard_puts_done_trials_first_by_score():
    trials = [
        Trial(trial=0, estimator="A", params={}, status="failed", error="x"),
        Trial(trial=1, estimator="A", params={}, status="done", cv_mean=0.5),
        Trial(trial=2, estimator="A", params={}, status="done", cv_mean=0.9),
        Trial(trial=3, estimator="A", params={}, status="running"),
        Trial(trial=4, estimator="A", params={}, status="done", cv_mean=0.9),
    ]
    assert [t.trial for t in leaderboard(trials)] == [2, 4, 1, 0, 3]


def test_the_report_draws_three_plots(tmp_path):
    files = SearchReportFiles(ArtifactStore(tmp_path))
    spaces = {
        "LogisticRegression": {
            "C": Distribution(type="float", low=0.01, high=10, log=True),
            "penalty": ["l2", None],
        }
    }
    search = record("random", spaces, id="s1", cv=5, scoring="accuracy")
    trials = [
        Trial(
            trial=n,
            estimator="LogisticRegression",
            params={"C": 0.01 * 3**n, "penalty": "l2"},
            status="done",
            cv_mean=0.5 + n / 20,
            cv_std=0.01,
            fit_seconds=0.1,
            predict_ms_per_row=0.01,
        )
        for n in range(6)
    ] + [
        Trial(
            trial=6,
            estimator="LogisticRegression",
            params={"C": 1.0, "penalty": None},
            status="failed",
            error="no",
        )
    ]
    listing = search_report.render_and_store(files, search, trials)
    assert listing["errors"] == []
    assert [plot["name"] for plot in listing["plots"]] == [
        "score_by_trial",
        "score_by_parameter",
        "leaderboard",
    ]
    for plot in listing["plots"]:
        assert files.path("s1", f"{plot['name']}.png").read_bytes().startswith(b"\x89PNG")
        assert b"<svg" in files.path("s1", f"{plot['name']}.svg").read_bytes()
    assert files.listing("s1")["plots"] == listing["plots"]
