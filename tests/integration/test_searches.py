"""Hyperparameter searches on the real stack: trials spread over the worker's processes, the
leaderboard, the budget, cancelling, a killed pool process, the best model, determinism.

The session's worker runs two pool processes: every search here runs two trials
at once. The data set is the small customers one (400 rows), so a trial of a
linear model takes a fraction of a second; the slow trials (forests of 1,500
trees) take several seconds, long enough to act in the middle of one.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from mlservice.redis_client import key
from tests.helpers import eventually, upload

ENDED = ("done", "failed", "cancelled")


@pytest.fixture(scope="module")
def dataset_id(client, admin_token, customers) -> str:
    return upload(client, admin_token, customers)


def start(client, token: str, body: dict) -> str:
    response = client.post("/resource/searches", token, json=body)
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/resource/searches/{response.json()['search_id']}"
    return response.json()["search_id"]


def shown(client, token: str, search_id: str) -> dict:
    response = client.get(f"/resource/searches/{search_id}", token)
    assert response.status_code == 200, response.text
    return response.json()


def wait_search(client, token: str, search_id: str, timeout: float = 240) -> dict:
    def ended() -> dict | None:
        record = shown(client, token, search_id)
        return record if record["status"] in ENDED else None

    return eventually(ended, timeout=timeout, message=f"search {search_id} did not end")


def logistic_grid(dataset_id: str, **fields) -> dict:
    return {
        "dataset_id": dataset_id,
        "target": "plan",
        "features": ["age", "city"],
        "estimator": "LogisticRegression",
        "space": {"C": [0.01, 0.1, 1.0, 10.0], "max_iter": [1000]},
        "strategy": "grid",
        "cv": 3,
    } | fields


def slow_forests(dataset_id: str, **fields) -> dict:
    """Trials of several seconds each: 1,500 trees, 5 folds."""
    return {
        "dataset_id": dataset_id,
        "target": "income",
        "features": ["age", "city"],
        "estimator": "RandomForestRegressor",
        "space": {"n_estimators": {"type": "int", "low": 1500, "high": 1600}},
        "strategy": "random",
        "max_trials": 4,
    } | fields


def test_a_grid_search_runs_every_point_and_its_best_model_predicts(
    client, admin_token, dataset_id
):
    search_id = start(client, admin_token, logistic_grid(dataset_id, register_as="search-grid"))
    record = wait_search(client, admin_token, search_id)
    assert record["status"] == "done", record
    assert record["trials"] == {
        "queued": 0, "running": 0, "done": 4, "failed": 0, "cancelled": 0, "skipped": 0, "total": 4
    }  # fmt: skip
    board = record["leaderboard"]
    assert sorted(t["params"]["C"] for t in board) == [0.01, 0.1, 1.0, 10.0]
    means = [t["cv_mean"] for t in board]
    assert means == sorted(means, reverse=True)
    for trial in board:
        assert trial["status"] == "done" and len(trial["cv_scores"]) == 3
        assert trial["fit_seconds"] > 0 and trial["predict_ms_per_row"] > 0
        assert trial["worker"] and trial["deliveries"] == 1
        assert "task_id" not in trial
    assert record["best"] == board[0]
    assert 0 <= record["test_score"] <= 1
    assert record["elapsed_s"] > 0

    model = client.get(f"/resource/models/{record['best_model_id']}", admin_token).json()
    assert model["status"] == "ready"
    assert model["estimator"] == "LogisticRegression"
    assert model["params"] == {**board[0]["params"], "random_state": 0}
    assert model["metrics"]["accuracy"] == pytest.approx(record["test_score"])
    predicted = client.post(
        f"/resource/models/{model['id']}/predict", admin_token, json={"age": 70, "city": "Lyon"}
    )
    assert predicted.status_code == 200, predicted.text
    assert predicted.json()["predictions"] == ["premium"]

    registered = eventually(
        lambda: (
            (r := client.get("/resource/registry/search-grid", admin_token)).status_code == 200
            and r.json()
        ),
        timeout=60,
    )
    assert [v["model_id"] for v in registered["versions"]] == [model["id"]]

    report = client.get(f"/resource/searches/{search_id}/report", admin_token).json()
    assert [plot["name"] for plot in report["plots"]] == [
        "score_by_trial",
        "score_by_parameter",
        "leaderboard",
    ]
    assert report["errors"] == []
    png = client.get(report["plots"][0]["png"], admin_token)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    svg = client.get(report["plots"][2]["svg"], admin_token)
    assert svg.headers["Content-Type"].startswith("image/svg+xml") and b"Leaderboard" in svg.content


def test_a_random_search_is_the_same_again_for_the_same_random_state(
    client, admin_token, dataset_id
):
    body = {
        "dataset_id": dataset_id,
        "target": "plan",
        "estimator": "RandomForestClassifier",
        "space": {
            "n_estimators": {"type": "int", "low": 5, "high": 40},
            "max_depth": [2, 4, None],
            "min_samples_leaf": {"type": "int", "low": 1, "high": 20, "log": True},
        },
        "strategy": "random",
        "max_trials": 6,
        "random_state": 7,
    }
    first, second = start(client, admin_token, body), start(client, admin_token, body)
    other = start(client, admin_token, body | {"random_state": 8})
    runs = [wait_search(client, admin_token, s) for s in (first, second, other)]
    assert [run["status"] for run in runs] == ["done"] * 3
    assert [run["trials"]["done"] for run in runs] == [6, 6, 6]

    def board(run: dict) -> list:
        return [
            (t["trial"], t["estimator"], t["params"], t["cv_scores"], t["cv_mean"], t["cv_std"])
            for t in run["leaderboard"]
        ]

    assert board(runs[0]) == board(runs[1])
    assert [t[2] for t in board(runs[0])] != [t[2] for t in board(runs[2])]
    assert runs[0]["test_score"] == runs[1]["test_score"]


def test_tpe_automl_completes_with_optuna(client, admin_token, dataset_id):
    body = {
        "dataset_id": dataset_id,
        "target": "plan",
        "automl": True,
        "estimators": ["LogisticRegression", "KNeighborsClassifier"],
        "strategy": "tpe",
        "max_trials": 6,
        "cv": 3,
        "scoring": "balanced_accuracy",
    }
    record = wait_search(client, admin_token, start(client, admin_token, body))
    assert record["status"] == "done", record
    assert record["trials"]["done"] == 6
    assert {t["estimator"] for t in record["leaderboard"]} <= {
        "LogisticRegression",
        "KNeighborsClassifier",
    }
    assert record["scoring"] == "balanced_accuracy"


def test_a_failing_combination_is_a_row_and_the_search_goes_on(client, admin_token, dataset_id):
    body = logistic_grid(
        dataset_id,
        space={"penalty": ["l1", "l2"], "solver": ["lbfgs"], "max_iter": [1000]},
    )
    record = wait_search(client, admin_token, start(client, admin_token, body))
    assert record["status"] == "done", record
    failed = [t for t in record["leaderboard"] if t["status"] == "failed"]
    assert [t["params"]["penalty"] for t in failed] == ["l1"]
    assert failed[0]["error"].startswith("ValueError: ")
    assert "l1" in failed[0]["error"]
    assert record["leaderboard"][0]["params"]["penalty"] == "l2"  # done ones first
    assert record["best"]["params"]["penalty"] == "l2"


def test_a_time_budget_starts_no_trial_after_its_deadline(client, admin_token, dataset_id):
    body = slow_forests(
        dataset_id,
        space={"n_estimators": {"type": "int", "low": 200, "high": 400}},
        max_trials=None,
        time_budget_s=4,
    )
    record = wait_search(client, admin_token, start(client, admin_token, body))
    assert record["status"] == "done", record
    deadline = record["deadline"]
    assert deadline == pytest.approx(record["started_at"] + 4)
    started = [t for t in record["leaderboard"] if t["started_at"] is not None]
    assert started and all(t["started_at"] < deadline for t in started)
    assert record["trials"]["total"] is None
    never = [t for t in record["leaderboard"] if t["started_at"] is None]
    assert all(t["status"] == "skipped" for t in never)
    # Trials already running at the deadline finish; nothing else runs after them.
    assert record["trials_ended_at"] >= max(t["finished_at"] for t in started)


def test_cancel_stops_running_trials_and_keeps_the_leaderboard(
    client, admin_token, dataset_id, store
):
    search_id = start(client, admin_token, slow_forests(dataset_id, max_trials=6))

    def running() -> dict | None:
        record = shown(client, admin_token, search_id)
        return record if record["trials"]["running"] else None

    eventually(running, timeout=120, interval=0.1, message="no trial started")
    holders = [
        json.loads(raw)
        for raw in (store.get(key("search-trial", f"{search_id}.{n}", "lease")) for n in range(6))
        if raw is not None
    ]
    cancelled = client.delete(f"/resource/searches/{search_id}", admin_token)
    assert cancelled.status_code == 200, cancelled.text
    record = cancelled.json()
    assert record["status"] == "cancelled"
    assert record["trials"]["running"] == 0 and record["trials"]["queued"] == 0
    assert record["trials"]["cancelled"] >= 1
    assert len(record["leaderboard"]) == record["trials"]["cancelled"] + record["trials"]["done"]

    def stopped() -> bool:
        return all(not os.path.exists(f"/proc/{h['pid']}") or _zombie(h["pid"]) for h in holders)

    eventually(stopped, timeout=30, message="a cancelled trial still runs")
    time.sleep(3)  # a queued trial a worker took now would change the leaderboard
    after = shown(client, admin_token, search_id)
    assert after["status"] == "cancelled"
    assert [(t["trial"], t["status"]) for t in after["leaderboard"]] == [
        (t["trial"], t["status"]) for t in record["leaderboard"]
    ]
    assert after.get("best_model_id") is None


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.mark.slow
def test_a_pool_process_killed_mid_trial_does_not_lose_the_search(
    client, admin_token, dataset_id, store
):
    search_id = start(client, admin_token, slow_forests(dataset_id, max_trials=3))
    lease_key = key("search-trial", f"{search_id}.0", "lease")
    raw = eventually(lambda: store.get(lease_key), timeout=120, interval=0.05)
    holder = json.loads(raw)
    os.kill(holder["pid"], signal.SIGKILL)

    record = wait_search(client, admin_token, search_id, timeout=300)
    assert record["status"] == "done", record
    assert record["trials"]["done"] == 3
    first = next(t for t in record["leaderboard"] if t["trial"] == 0)
    assert first["status"] == "done" and first["deliveries"] == 2
    assert first["worker"] != f"{holder['host'].split()[0]}:{holder['pid']}"
    model = client.get(f"/resource/models/{record['best_model_id']}", admin_token).json()
    assert model["status"] == "ready"


def test_trials_over_their_time_limit_are_stopped_and_recorded(client, admin_token, dataset_id):
    body = slow_forests(dataset_id, max_trials=2, trial_time_limit_s=1)
    record = wait_search(client, admin_token, start(client, admin_token, body))
    assert record["status"] == "failed", record
    assert [t["status"] for t in record["leaderboard"]] == ["failed", "failed"]
    assert {t["error"] for t in record["leaderboard"]} == {
        "stopped: over the trial time limit of 1 s"
    }
    assert record["error"] == (
        "no trial succeeded (2 ran); the first error: stopped: over the trial time limit of 1 s"
    )
    assert record.get("best_model_id") is None
