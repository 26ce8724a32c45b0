"""Search routes through Flask's test client: what they refuse before anything is queued, what
they store and send, listing, ownership and cancelling, with no worker."""

from __future__ import annotations

import io

import pytest

from mlservice.celery_app import SHORT_QUEUE, TRAINING_QUEUE
from mlservice.store.search_records import Trial, TrialStatus
from tests.data import make_customers
from tests.route.conftest import token_for


@pytest.fixture(scope="module")
def dataset_id(http_module, admin_module) -> str:
    data = make_customers.customers().head(120).to_csv(index=False).encode()
    answer = http_module.post(
        "/resource/datasets",
        headers=admin_module,
        data={"file": (io.BytesIO(data), "customers.csv", "text/csv")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


@pytest.fixture(scope="module")
def http_module(app):
    with app.test_client() as client:
        yield client


@pytest.fixture(scope="module")
def admin_module(ctx):
    return token_for(ctx, "admin")


def search(dataset_id: str, **fields) -> dict:
    body = {
        "dataset_id": dataset_id,
        "target": "plan",
        "estimator": "LogisticRegression",
        "space": {"C": [0.1, 1.0, 10.0]},
        "strategy": "grid",
    }
    return body | fields


def queued(ctx) -> tuple[int, int]:
    return ctx.redis.llen(SHORT_QUEUE), ctx.redis.llen(TRAINING_QUEUE)


REFUSED = [
    (
        {"space": {"C": [0.1, -1]}},
        "space of LogisticRegression: parameter 'C': The 'C' parameter of LogisticRegression "
        "must be a float in the range (0.0, inf]. Got -1 instead.",
    ),
    (
        {"space": {"not_a_param": [1]}},
        "space of LogisticRegression: parameter 'not_a_param': unknown parameter "
        "'not_a_param' for LogisticRegression; known: C, class_weight, dual, fit_intercept, "
        "intercept_scaling, l1_ratio, max_iter, n_jobs, penalty, random_state, "
        "solver, tol, verbose, warm_start",
    ),
    (
        {"space": {"C": {"type": "float", "low": 0, "high": 10, "log": True}}},
        "space of LogisticRegression: parameter 'C': a distribution with \"log\": true needs "
        "'low' above 0",
    ),
    (
        {"space": {"C": {"type": "float", "low": 5, "high": 1}}},
        "space of LogisticRegression: parameter 'C': 'low' must be below 'high' (both finite "
        "numbers)",
    ),
    (
        {"space": {"max_iter": {"type": "int", "low": 10, "high": 20.5}}},
        "space of LogisticRegression: parameter 'max_iter': an int distribution needs whole "
        "numbers 'low' and 'high'",
    ),
    (
        {"space": {"C": "big"}},
        "space: parameter 'C' must be a list of values to try or a distribution {\"type\": "
        '"int"|"float", "low": number, "high": number, "log": true|false} (Expected '
        "`object | array`, got `str`)",
    ),
    (
        {"space": {"C": {"type": "float", "low": 1, "high": 2, "step": 1}}},
        "space: parameter 'C' must be a list of values to try or a distribution {\"type\": "
        '"int"|"float", "low": number, "high": number, "log": true|false} (Object contains '
        "unknown field `step`)",
    ),
    (
        {"space": {"C": []}},
        "space of LogisticRegression: parameter 'C' has an empty list; "
        "give at least one value to try",
    ),
    (
        {"space": {"max_iter": [100, 10_000_000]}},
        "space of LogisticRegression: parameter 'max_iter': LogisticRegression "
        "max_iter=10000000 is more than 100000 ([limits] max_iter)",
    ),
    (
        {"estimator": "NoSuchEstimator"},
        "unknown estimator 'NoSuchEstimator'; see GET /resource/estimators for the supported ones",
    ),
    ({"strategy": "annealing"}, "'strategy' must be one of grid, random, tpe"),
    (
        {"scoring": "r2"},
        "'scoring' 'r2' does not judge classification; use e.g. accuracy",
    ),
    (
        {"scoring": "best"},
        "'scoring' 'best' is not a scikit-learn scorer; for classification use e.g. accuracy "
        "(the names: sklearn.metrics.get_scorer_names())",
    ),
    (
        {"automl": True},
        'an AutoML search ("automl": true) chooses the estimators and their spaces: leave out '
        "'estimator' and 'space' (name candidates in 'estimators')",
    ),
    ({"cv": 1}, "'cv' must be an integer between 2 and 20 (folds)"),
]


@pytest.mark.parametrize("change, message", REFUSED, ids=[str(i) for i in range(len(REFUSED))])
def test_a_bad_search_is_400_naming_the_parameter_before_anything_is_queued(
    http_module, admin_module, ctx, dataset_id, change, message
):
    before = queued(ctx)
    searches = ctx.redis.zcard("mlservice:searchs")
    answer = http_module.post(
        "/resource/searches", headers=admin_module, json=search(dataset_id, **change)
    )
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json() == {"status": message}
    assert queued(ctx) == before
    assert ctx.redis.zcard("mlservice:searchs") == searches


def test_what_does_not_fit_the_data_or_the_limits_is_422(
    http_module, admin_module, ctx, dataset_id
):
    before = queued(ctx)
    cases = [
        (
            {"target": "nope"},
            "target 'nope' is not a column of the data set; columns: age, city, income, plan",
        ),
        (
            {"strategy": "random"},
            "a random search needs a budget: 'max_trials' and/or 'time_budget_s'",
        ),
        ({"max_trials": 5000}, "'max_trials' 5000 is more than [search] max_trials = 1000"),
        (
            {"trial_time_limit_s": 100_000},
            "'trial_time_limit_s' 100000 is more than [search] trial_time_limit_seconds = 600",
        ),
        (
            {"estimator": "Ridge", "space": {"alpha": [1.0]}},
            "target 'plan' is string, but Ridge is a regressor and needs numbers",
        ),
    ]
    for change, message in cases:
        answer = http_module.post(
            "/resource/searches", headers=admin_module, json=search(dataset_id, **change)
        )
        assert answer.status_code == 422, (change, answer.get_json())
        assert answer.get_json() == {"status": message}
    assert queued(ctx) == before


def test_an_accepted_search_is_stored_queued_and_its_first_step_sent(
    http_module, admin_module, ctx, dataset_id
):
    short, training = queued(ctx)
    answer = http_module.post(
        "/resource/searches", headers=admin_module, json=search(dataset_id, max_trials=2)
    )
    assert answer.status_code == 202, answer.get_json()
    accepted = answer.get_json()
    search_id = accepted["search_id"]
    assert accepted == {
        "search_id": search_id,
        "status": "queued",
        "status_url": f"/resource/searches/{search_id}",
    }
    assert answer.headers["Location"] == f"/resource/searches/{search_id}"
    assert queued(ctx) == (short + 1, training)  # the start step; trials come from workers

    shown = http_module.get(f"/resource/searches/{search_id}", headers=admin_module).get_json()
    assert shown["status"] == "queued"
    assert shown["task"] == "classification"
    assert shown["scoring"] == "accuracy"
    assert shown["space"] == {"LogisticRegression": {"C": [0.1, 1.0, 10.0]}}
    assert shown["trials"] == {
        "queued": 0,
        "running": 0,
        "done": 0,
        "failed": 0,
        "cancelled": 0,
        "skipped": 0,
        "total": 2,
    }
    assert shown["leaderboard"] == [] and shown["best"] is None and shown["elapsed_s"] is None
    assert "refit_task_id" not in shown

    listed = http_module.get("/resource/searches", headers=admin_module).get_json()
    assert listed["searches"][0]["id"] == search_id
    assert "leaderboard" not in listed["searches"][0]
    assert listed["total"] >= 1


def test_automl_takes_the_curated_set_of_the_targets_task(
    http_module, admin_module, ctx, dataset_id
):
    body = {
        "dataset_id": dataset_id,
        "target": "income",
        "automl": True,
        "max_trials": 10,
        "features": ["age", "city"],
    }
    answer = http_module.post("/resource/searches", headers=admin_module, json=body)
    assert answer.status_code == 202, answer.get_json()
    shown = http_module.get(answer.headers["Location"], headers=admin_module).get_json()
    assert shown["task"] == "regression" and shown["scoring"] == "r2"
    assert list(shown["space"]) == [
        "Ridge",
        "RandomForestRegressor",
        "ExtraTreesRegressor",
        "HistGradientBoostingRegressor",
        "KNeighborsRegressor",
    ]
    assert shown["space"]["Ridge"] == {
        "alpha": {"type": "float", "low": 0.001, "high": 1000.0, "log": True}
    }
    named = body | {"estimators": ["RandomForestRegressor", "LogisticRegression"]}
    mixed = http_module.post("/resource/searches", headers=admin_module, json=named)
    assert mixed.status_code == 400
    assert mixed.get_json() == {
        "status": "'estimators' mixes classifiers and regressors: a search solves one task"
    }


def test_another_accounts_search_is_not_found(http_module, admin_module, ctx, dataset_id):
    answer = http_module.post(
        "/resource/searches", headers=admin_module, json=search(dataset_id, max_trials=1)
    )
    search_id = answer.get_json()["search_id"]
    ctx.accounts.create("rt-search-other", "x" * 12)
    other = token_for(ctx, "rt-search-other")
    for method in ("get", "delete"):
        found = getattr(http_module, method)(f"/resource/searches/{search_id}", headers=other)
        assert found.status_code == 404
        assert found.get_json() == {"status": f"no search {search_id!r}"}
    assert http_module.get("/resource/searches", headers=other).get_json()["total"] == 0


def test_cancel_marks_it_and_its_trials_at_once_and_keeps_the_leaderboard(
    http_module, admin_module, ctx, dataset_id
):
    answer = http_module.post(
        "/resource/searches", headers=admin_module, json=search(dataset_id, max_trials=3)
    )
    search_id = answer.get_json()["search_id"]
    # As a worker would have left it: one trial done, one running, one queued.
    ctx.searches.update(search_id, status="running", started_at=1.0)
    ctx.searches.add_trials(
        search_id,
        [
            Trial(
                trial=0,
                estimator="LogisticRegression",
                params={"C": 0.1},
                status="done",
                cv_mean=0.9,
                cv_std=0.01,
                task_id="t0",
            ),
            Trial(
                trial=1,
                estimator="LogisticRegression",
                params={"C": 1.0},
                status="running",
                task_id="t1",
            ),
            Trial(trial=2, estimator="LogisticRegression", params={"C": 10.0}, task_id="t2"),
        ],
    )
    cancelled = http_module.delete(f"/resource/searches/{search_id}", headers=admin_module)
    assert cancelled.status_code == 200
    shown = cancelled.get_json()
    assert shown["status"] == "cancelled"
    assert [(t["trial"], t["status"]) for t in shown["leaderboard"]] == [
        (0, TrialStatus.DONE),
        (1, TrialStatus.CANCELLED),
        (2, TrialStatus.CANCELLED),
    ]
    assert shown["best"]["trial"] == 0 and shown["best"]["cv_mean"] == 0.9
    again = http_module.delete(f"/resource/searches/{search_id}", headers=admin_module)
    assert again.status_code == 409
    assert again.get_json() == {
        "status": f"search {search_id!r} is already cancelled: there is nothing to cancel"
    }
    assert search_id not in ctx.searches.active()
    report = http_module.get(f"/resource/searches/{search_id}/report", headers=admin_module)
    assert report.status_code == 409
