"""Scoring and profiling jobs survive their worker, like training: leases, the sweep, a cap.

Each test works on the session's real worker and leaves a live worker behind
(the ``live_worker`` fixture of test_training_faults). A scoring job of 40,000
rows in chunks of 100 rows (the session stack's ``scoring_chunk_rows``) takes
seconds: long enough to kill its worker in the middle.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid

import pytest
from celery.exceptions import TimeLimitExceeded
from celery.signals import task_failure

from mlservice import celery_app, context
from mlservice.redis_client import key
from mlservice.store.job_runs import Outcome
from mlservice.tasks import profiling_tasks, scoring_tasks
from tests.conftest import SCORING_CHUNK_ROWS
from tests.data import make_customers
from tests.helpers import eventually, train, upload, wait_ready
from tests.integration.test_training_faults import (  # noqa: F401 (a fixture)
    kill_worker_main,
    live_worker,
    process_runs,
    restart_worker,
)

#: Rows of the data set scored: 400 chunks.
ROWS = 400 * SCORING_CHUNK_ROWS


@pytest.fixture(scope="module")
def model_id(client, admin_token, customers) -> str:
    """A small forest served by scikit-learn."""
    dataset_id = upload(client, admin_token, customers)
    body = {
        "dataset_id": dataset_id,
        "target": "plan",
        "estimator": "RandomForestClassifier",
        "params": {"n_estimators": 10, "max_depth": 4, "random_state": 0},
        "compile": False,
    }
    record = wait_ready(client, admin_token, train(client, admin_token, body)["model_id"])
    assert record["status"] == "ready", record
    return record["id"]


@pytest.fixture(scope="module")
def source_id(client, admin_token) -> str:
    return upload(client, admin_token, make_customers.customers(rows=ROWS, seed=11))


def start_scoring(client, token: str, model_id: str, source_id: str, request_id: str) -> dict:
    response = client.post(
        f"/resource/models/{model_id}/predictions",
        token,
        json={"dataset_id": source_id, "format": "csv"},
        headers={"X-Request-ID": request_id},
    )
    assert response.status_code == 202, response.text
    return response.json()


def holder(store, kind: str, job_id: str) -> tuple[str, dict] | None:
    raw = store.get(key(kind, job_id, "lease"))
    return (raw.decode(), json.loads(raw)) if raw is not None else None


def wait_for_run(store, kind: str, job_id: str, not_in: set[str] = frozenset()):
    def held():
        found = holder(store, kind, job_id)
        return found if found is not None and found[0] not in not_in else None

    return eventually(held, timeout=90, interval=0.02, message=f"no run of {kind} {job_id}")


def output_of(store, task_id: str, kind: str = "scoring") -> str:
    """The job id (output data set) of a scoring task, from the task its first start kept."""

    def found():
        for raw in store.scan_iter(match=key(kind, "*", "task")):
            if json.loads(store.get(raw) or "{}").get("task_id") == task_id:
                return raw.decode().split(":")[-2]
        return None

    return eventually(found, timeout=60, interval=0.05, message="the job never started")


def status_of(client, token: str, task_id: str) -> dict:
    return client.get(f"/resource/task/status/{task_id}", token).json()


def finished(client, token: str, task_id: str, timeout: float = 180) -> dict:
    return eventually(
        lambda: (s := status_of(client, token, task_id))["done"] and s,
        timeout=timeout,
        message=f"task {task_id} never ended",
    )


def partial_files(settings, output_id: str) -> list[str]:
    directory = settings.artifact_dir / "datasets" / output_id
    return sorted(p.name for p in directory.glob(".*.part")) if directory.exists() else []


def worker_lines(stack, task_id: str) -> list[dict]:
    lines = []
    for line in (stack.logs / "worker.log").read_text(errors="replace").splitlines():
        if task_id in line and line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_a_worker_killed_mid_scoring_job_is_sent_again_and_the_job_ends_done(
    stack, client, admin_token, store, settings, model_id, source_id
):
    request_id = f"job-faults-{uuid.uuid4().hex}"
    accepted = start_scoring(client, admin_token, model_id, source_id, request_id)
    task_id = accepted["task_id"]
    output_id = output_of(store, task_id)
    _, first = wait_for_run(store, "scoring", output_id)
    eventually(
        lambda: status_of(client, admin_token, task_id).get("rows_done", 0) >= 20 * 100,
        timeout=90,
        interval=0.05,
        message="the job never got going",
    )
    assert partial_files(settings, output_id)  # half-written when its worker dies
    killed_at = time.monotonic()
    kill_worker_main(stack)
    eventually(lambda: not process_runs(first["pid"]), timeout=10, message="pool process lives")
    restart_worker(stack)

    status = finished(client, admin_token, task_id)
    took = time.monotonic() - killed_at
    assert status["state"] == "SUCCESS", status
    assert took < 150  # the sweep, not the broker's visibility timeout (2 h)
    assert status["result"]["dataset_id"] == output_id
    assert status["result"]["rows"] == ROWS
    record = client.get(f"/resource/datasets/{output_id}", admin_token).json()
    assert record["rows"] == ROWS and record["status"] == "ready"
    assert partial_files(settings, output_id) == []
    assert int(store.get(key("scoring", output_id, "deliveries"))) == 2
    assert store.zscore(key("scoring", "running"), output_id) is None
    assert holder(store, "scoring", output_id) is None
    assert store.get(key("scoring", output_id, "outcome")) == b'{"status":"done","reason":""}'
    # The run sent again still names the request that started the job.
    again = [line for line in worker_lines(stack, task_id) if "start 2" in line.get("message", "")]
    assert again and all(line.get("request_id") == request_id for line in again), again
    print(f"killed mid-job -> done in {took:.1f} s")

    # The broker's own redelivery of the first message (after its visibility timeout)
    # answers the job's result again: nothing is scored twice.
    celery_app.configure(celery_app.app, settings)
    args = json.loads(store.get(key("scoring", output_id, "task")) or "null")
    assert args is None  # settled: its task is no longer kept
    again_result = scoring_tasks.score_dataset.apply_async(
        (model_id, output_id, {"account_id": "x", "username": "admin"}, {"dataset_id": source_id}),
        task_id=task_id,
    ).get(timeout=60)
    assert again_result == status["result"]
    assert int(store.get(key("scoring", output_id, "deliveries"))) == 2


def test_a_scoring_job_that_keeps_killing_its_worker_ends_failed(
    stack, client, admin_token, store, settings, model_id, source_id
):
    limit = settings.service.max_job_deliveries
    main = stack.processes["worker"]
    accepted = start_scoring(client, admin_token, model_id, source_id, uuid.uuid4().hex)
    task_id = accepted["task_id"]
    output_id = output_of(store, task_id)
    seen: set[str] = set()
    for _ in range(limit):  # each run dies the way an out-of-memory kill would end it
        raw, run = wait_for_run(store, "scoring", output_id, not_in=seen)
        seen.add(raw)
        os.kill(run["pid"], signal.SIGKILL)

    status = finished(client, admin_token, task_id, timeout=120)
    assert status["state"] == "FAILURE", status
    assert f"scoring was started {limit} times" in status["error"]
    assert f"max_job_deliveries = {limit}" in status["error"]
    assert int(store.get(key("scoring", output_id, "deliveries"))) == limit + 1
    assert main.poll() is None  # the worker itself lived on
    response = client.get(f"/resource/datasets/{output_id}", admin_token)
    assert response.status_code == 404
    assert not (settings.artifact_dir / "datasets" / output_id).exists()
    outcome = Outcome("failed", status["error"])
    assert store.get(key("scoring", output_id, "outcome")) == (
        b'{"status":"failed","reason":' + json.dumps(outcome.reason).encode() + b"}"
    )


def test_a_profiling_job_whose_worker_dies_is_sent_again_and_the_data_set_ends_ready(
    client, admin_token, store, settings
):
    rows = 700_000  # above [service] inline_profile_mb (16 MiB): profiled by a task
    data = make_customers.customers(rows=rows, seed=5).to_csv(index=False).encode()
    assert len(data) > settings.service.inline_profile_mb * 1024 * 1024
    response = client.post(
        "/resource/datasets", admin_token, files={"file": ("big.csv", data, "text/csv")}
    )
    assert response.status_code == 202, response.text
    dataset_id = response.json()["id"]
    _, run = wait_for_run(store, "profiling", dataset_id)
    os.kill(run["pid"], signal.SIGKILL)  # the pool process dies mid-profile

    def settled() -> dict | None:
        record = client.get(f"/resource/datasets/{dataset_id}", admin_token).json()
        return record if record["status"] != "profiling" else None

    record = eventually(settled, timeout=120, message="the data set stayed profiling")
    assert record["status"] == "ready", record
    assert record["rows"] == rows
    assert int(store.get(key("profiling", dataset_id, "deliveries"))) == 2
    assert store.zscore(key("profiling", "running"), dataset_id) is None
    assert client.delete(f"/resource/datasets/{dataset_id}", admin_token).status_code == 204


def test_a_training_run_resumed_by_the_sweep_keeps_its_request_id(
    stack, client, admin_token, store, customers
):
    dataset_id = upload(client, admin_token, customers)
    request_id = f"resumed-training-{uuid.uuid4().hex}"
    body = {
        "dataset_id": dataset_id,
        "target": "income",
        "features": ["age", "city"],
        "estimator": "RandomForestRegressor",
        "params": {"n_estimators": 1500, "random_state": 0},
        "compile": False,
    }
    response = client.post(
        "/resource/models", admin_token, json=body, headers={"X-Request-ID": request_id}
    )
    assert response.status_code == 202, response.text
    model_id = response.json()["model_id"]
    _, first = wait_for_run(store, "model", model_id)
    kill_worker_main(stack)
    eventually(lambda: not process_runs(first["pid"]), timeout=10, message="pool process lives")
    restart_worker(stack)

    record = wait_ready(client, admin_token, model_id, timeout=180)
    assert record["status"] == "ready", record
    again = [
        line
        for line in worker_lines(stack, model_id)
        if "training start 2" in line.get("message", "")
    ]
    assert again and all(line.get("request_id") == request_id for line in again), again


def test_a_profiling_job_killed_at_the_hard_time_limit_fails_at_once(store, settings):
    """The worker's main process reports the kill (task_failure): the data set is failed and
    the sweep never sends the job again."""
    ctx = context.worker_context()
    access = ctx.accounts.current_access("admin")
    assert access is not None
    dataset_id = uuid.uuid4().hex
    ctx.datasets.catalog.create(
        {
            "id": dataset_id,
            "name": "too slow to profile",
            "owner": "admin",
            "owner_id": access.account_id,
            "status": "profiling",
            "format": "csv",
            "size_bytes": 1,
            "upload_seconds": 0.1,
            "created_at": time.time(),
        }
    )
    limit = settings.service.task_time_limit_seconds
    task_failure.send(
        sender=profiling_tasks.profile_dataset,
        task_id=uuid.uuid4().hex,
        exception=TimeLimitExceeded(limit),
        args=(dataset_id,),
        kwargs={},
    )
    record = ctx.datasets.catalog.get(dataset_id)
    reason = f"profiling was stopped: over [service] task_time_limit_seconds = {limit}"
    assert record["status"] == "failed" and record["error"] == reason
    assert ctx.profiling_runs.outcome(dataset_id) == Outcome("failed", reason)
    assert store.zscore(key("profiling", "running"), dataset_id) is None
    ctx.datasets.delete(record)
