"""Training survives its worker: killed mid-run, killed by its job, stopped, or its model deleted.

Each test works on the session's real worker (``stack.processes["worker"]``)
and leaves a live worker behind. The slow model (1,500 trees) fits in about
two seconds and compiles to ONNX in about six: long enough to act in the
middle of either step.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid

import pytest
import requests
from celery.exceptions import TimeLimitExceeded
from celery.signals import task_failure

from mlservice import celery_app, context
from mlservice.redis_client import key
from mlservice.store.training_runs import CALLBACKS_KEY, RUNNING_KEY
from mlservice.tasks import training_tasks
from tests.helpers import CallbackReceiver, eventually, train, upload, wait_ready

CALLBACK_SECRET = "receiver-chosen-secret"


@pytest.fixture
def receiver():
    receiver = CallbackReceiver(parse_json=True)
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def dataset_id(client, admin_token, customers) -> str:
    return upload(client, admin_token, customers)


def slow_model(dataset_id: str, receiver: CallbackReceiver | None = None) -> dict:
    """A training request whose fit and ONNX compile take a few seconds each."""
    body = {
        "dataset_id": dataset_id,
        "target": "income",
        "features": ["age", "city"],
        "estimator": "RandomForestRegressor",
        "params": {"n_estimators": 1500, "random_state": 0},
    }
    if receiver is not None:
        body |= {"callback_url": receiver.url, "callback_secret": CALLBACK_SECRET}
    return body


def worker_ready(stack) -> bool:
    try:
        return requests.get(f"{stack.url}/readyz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def restart_worker(stack) -> None:
    """Start the worker again (after it was killed or stopped) and wait until it answers."""
    old = stack.processes.get("worker")
    if old is not None:
        old.wait(timeout=30)
    stack.start_worker()
    eventually(lambda: worker_ready(stack), timeout=90, message="the worker did not come back")


@pytest.fixture(autouse=True)
def live_worker(stack):
    """Whatever a test did to the worker, the next test finds one running."""
    yield
    worker = stack.processes.get("worker")
    if worker is None or worker.poll() is not None:
        restart_worker(stack)


def lease(store, model_id: str) -> tuple[str, dict] | None:
    raw = store.get(key("model", model_id, "lease"))
    return (raw.decode(), json.loads(raw)) if raw is not None else None


def deliveries(store, model_id: str) -> int:
    return int(store.get(key("model", model_id, "deliveries")) or 0)


def wait_for_run(store, model_id: str, not_in: set[str] = frozenset(), timeout: float = 90):
    """The lease of a run of the model (one not in ``not_in``): (raw, holder)."""

    def held():
        found = lease(store, model_id)
        return found if found is not None and found[0] not in not_in else None

    return eventually(held, timeout=timeout, interval=0.02, message="no run took the lease")


def process_runs(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def outcomes(receiver: CallbackReceiver) -> list[str]:
    """The delivery ids of the callbacks received, once each, after they are all in.

    A worker killed between a POST and its bookkeeping makes the callback go
    again, with the same delivery id: a receiver counts outcomes by that id.
    """
    receiver.wait(1, timeout=120)  # a callback lost with a worker goes again within a minute
    time.sleep(1)
    ids = [headers["X-MLService-Delivery"] for headers, _ in receiver.calls]
    assert [payload["delivery_id"] for _, payload in receiver.calls] == ids
    return sorted(set(ids))


def model(client, token: str, model_id: str) -> dict:
    return client.get(f"/resource/models/{model_id}", token).json()


def wait_compiling(client, token: str, model_id: str) -> dict:
    """The record once the model is ready and its ONNX compile step is running."""

    def compiling():
        record = model(client, token, model_id)
        assert record["status"] in ("queued", "training", "ready"), record
        return record if "compiling to ONNX" in record.get("engine", {}).get("reason", "") else None

    return eventually(compiling, timeout=90, interval=0.02, message="never seen compiling")


def wait_compiled(client, token: str, model_id: str, timeout: float = 180) -> dict:
    def compiled():
        record = model(client, token, model_id)
        assert record["status"] == "ready", record
        return None if "compiling to ONNX" in record["engine"]["reason"] else record

    return eventually(compiled, timeout=timeout, message="the compile step never ended")


def kill_worker_main(stack) -> None:
    """kill -9 the Celery main process (its pool processes die with it)."""
    main = stack.processes["worker"]
    os.kill(main.pid, signal.SIGKILL)
    main.wait(timeout=30)


def test_worker_killed_mid_training_resumes_within_seconds(
    stack, client, admin_token, store, dataset_id, receiver
):
    accepted = train(client, admin_token, slow_model(dataset_id, receiver))
    model_id = accepted["model_id"]
    _, holder = wait_for_run(store, model_id)
    assert model(client, admin_token, model_id)["status"] in ("queued", "training")
    killed_at = time.monotonic()
    kill_worker_main(stack)
    eventually(lambda: not process_runs(holder["pid"]), timeout=10, message="pool process lives")
    restart_worker(stack)

    record = wait_ready(client, admin_token, model_id, timeout=180)
    assert record["status"] == "ready", record
    assert time.monotonic() - killed_at < 120  # the sweep, not the 2 h visibility timeout
    assert deliveries(store, model_id) == 2
    wait_compiled(client, admin_token, model_id)
    status = eventually(
        lambda: (s := client.get(accepted["location"], admin_token).json())["done"] and s,
        timeout=60,
        message="the task never ended",
    )
    assert status["state"] == "SUCCESS", status  # the same task id followed the resumed run
    assert outcomes(receiver) == [f"{model_id}:ready"]
    assert store.zscore(RUNNING_KEY, model_id) is None
    assert lease(store, model_id) is None


def test_worker_killed_while_compiling_compiles_again_and_no_more(
    stack, client, admin_token, store, settings, dataset_id, receiver
):
    accepted = train(client, admin_token, slow_model(dataset_id, receiver))
    model_id = accepted["model_id"]
    fitted = wait_compiling(client, admin_token, model_id)
    kill_worker_main(stack)
    restart_worker(stack)

    record = wait_compiled(client, admin_token, model_id)
    for field in ("started_at", "finished_at", "metrics", "training_seconds", "input_schema"):
        assert record[field] == fitted[field], field  # not fitted again
    if record["engine"]["name"] == "onnxruntime":
        assert record["version"] == fitted["version"] + 1  # only the compiled version is new
    else:
        assert record["version"] == fitted["version"]
    assert deliveries(store, model_id) == 2
    assert not store.exists(key("model", model_id, "compile-pending"))
    held_out = settings.artifact_dir / "models" / model_id / "held-out.parquet"
    assert not held_out.exists()
    assert outcomes(receiver) == [f"{model_id}:ready"]


def test_training_that_keeps_killing_its_worker_ends_failed(
    stack, client, admin_token, store, dataset_id, receiver, settings
):
    limit = settings.service.max_training_deliveries
    main = stack.processes["worker"]
    accepted = train(client, admin_token, slow_model(dataset_id, receiver))
    model_id = accepted["model_id"]
    seen: set[str] = set()
    for _ in range(limit):  # each run dies the way an out-of-memory kill would end it
        raw, holder = wait_for_run(store, model_id, not_in=seen)
        seen.add(raw)
        os.kill(holder["pid"], signal.SIGKILL)

    record = wait_ready(client, admin_token, model_id, timeout=120)
    assert record["status"] == "failed", record
    assert f"started {limit} times" in record["error"]
    assert f"max_training_deliveries = {limit}" in record["error"]
    assert deliveries(store, model_id) == limit + 1
    assert main.poll() is None  # the worker itself lived on
    status = eventually(
        lambda: (s := client.get(accepted["location"], admin_token).json())["done"] and s,
        timeout=30,
        message="the task never ended",
    )
    assert status["state"] == "FAILURE" and "max_training_deliveries" in status["error"]
    receiver.wait(1)
    time.sleep(1)
    assert [payload["status"] for _, payload in receiver.calls] == ["failed"]
    assert receiver.calls[0][1]["error"] == record["error"]


def test_a_compile_step_that_keeps_killing_its_worker_is_given_up(
    client, admin_token, store, dataset_id, settings
):
    limit = settings.service.max_training_deliveries
    accepted = train(client, admin_token, slow_model(dataset_id))
    model_id = accepted["model_id"]
    fitted = wait_compiling(client, admin_token, model_id)
    seen: set[str] = set()
    for _ in range(limit):  # the first run, then runs of the compile step alone
        raw, holder = wait_for_run(store, model_id, not_in=seen)
        seen.add(raw)
        os.kill(holder["pid"], signal.SIGKILL)

    record = wait_compiled(client, admin_token, model_id, timeout=120)
    assert record["engine"]["name"] == "scikit-learn"
    assert f"max_training_deliveries = {limit}" in record["engine"]["reason"]
    assert record["version"] == fitted["version"] and record["metrics"] == fitted["metrics"]
    assert deliveries(store, model_id) == limit + 1


def test_deleting_a_model_in_training_stops_its_task(
    stack, client, admin_token, store, settings, dataset_id, receiver
):
    accepted = train(client, admin_token, slow_model(dataset_id, receiver))
    model_id = accepted["model_id"]
    _, holder = wait_for_run(store, model_id)
    assert client.delete(f"/resource/models/{model_id}", admin_token).status_code == 204

    status = eventually(
        lambda: (s := client.get(accepted["location"], admin_token).json())["done"] and s,
        timeout=30,
        message="the task was not revoked",
    )
    assert status["state"] == "REVOKED", status
    eventually(lambda: not process_runs(holder["pid"]), timeout=10, message="it still runs")
    directory = settings.artifact_dir / "models" / model_id

    def nothing_left():
        assert not directory.exists()
        assert store.zscore(RUNNING_KEY, model_id) is None
        assert lease(store, model_id) is None
        assert not store.exists(key("model", model_id, "version"))
        return True

    eventually(nothing_left, timeout=60, message="the deleted model left something behind")
    for _ in range(3):  # and nothing brings it back
        assert client.get(f"/resource/models/{model_id}", admin_token).status_code == 404
        time.sleep(0.5)
    assert receiver.calls == []
    assert stack.processes["worker"].poll() is None


def test_a_ready_model_delivered_again_is_not_trained_again(
    client, admin_token, store, settings, dataset_id, receiver
):
    body = slow_model(dataset_id, receiver) | {"params": {"n_estimators": 20, "random_state": 0}}
    accepted = train(client, admin_token, body)
    model_id = accepted["model_id"]
    wait_ready(client, admin_token, model_id)
    before = wait_compiled(client, admin_token, model_id)
    receiver.wait(1)

    celery_app.configure(celery_app.app, settings)
    result = training_tasks.train_model.apply_async((model_id,), task_id=accepted["task_id"])
    outcome = result.get(timeout=60)
    assert outcome["status"] == "ready" and outcome["metrics"] == before["metrics"]
    after = model(client, admin_token, model_id)
    assert after == before  # same version, metrics, timings: nothing was trained
    assert deliveries(store, model_id) == 1
    time.sleep(1)
    assert len(receiver.calls) == 1


def test_stopping_the_worker_lets_a_compile_finish(
    stack, client, admin_token, store, dataset_id, receiver
):
    accepted = train(client, admin_token, slow_model(dataset_id, receiver))
    model_id = accepted["model_id"]
    wait_compiling(client, admin_token, model_id)
    assert stack.stop_worker(grace=60) == 0  # a warm shutdown, not a lost pool process

    record = model(client, admin_token, model_id)
    assert "compiling to ONNX" not in record["engine"]["reason"], record
    restart_worker(stack)
    time.sleep(3)  # a message left unacknowledged would be delivered again now
    assert deliveries(store, model_id) == 1
    assert model(client, admin_token, model_id) == record
    status = client.get(accepted["location"], admin_token).json()
    assert status["state"] == "SUCCESS", status
    assert len(receiver.calls) == 1


def admin_account_id(ctx: context.ServiceContext) -> str:
    """The account id records of the admin carry."""
    access = ctx.accounts.current_access("admin")
    assert access is not None
    return access.account_id


def test_a_run_killed_by_the_hard_time_limit_fails_at_once(stack, store, settings, receiver):
    """The worker's main process reports the kill (task_failure): no redelivery is awaited."""
    ctx = context.worker_context()
    training = ctx.models.create(
        {
            "id": uuid.uuid4().hex,
            "name": "too slow",
            "owner": "admin",
            "owner_id": admin_account_id(ctx),
            "status": "training",
            "source": "trained",
            "callback_url": receiver.url,
        },
        CALLBACK_SECRET,
    )
    compiling = ctx.models.create(
        {
            "id": uuid.uuid4().hex,
            "name": "slow compile",
            "owner": "admin",
            "owner_id": admin_account_id(ctx),
            "status": "ready",
            "source": "trained",
            "engine": {"name": "scikit-learn", "reason": "compiling to ONNX"},
        }
    )
    store.set(key("model", compiling["id"], "compile-pending"), 1)
    limit = settings.service.task_time_limit_seconds
    for record in (training, compiling):
        task_failure.send(
            sender=training_tasks.train_model,
            task_id=uuid.uuid4().hex,
            exception=TimeLimitExceeded(limit),
            args=(record["id"],),
            kwargs={},
        )

    failed = ctx.models.catalog.get(training["id"])
    assert failed["status"] == "failed"
    assert (
        failed["error"] == f"training was stopped: over [service] task_time_limit_seconds = {limit}"
    )
    receiver.wait(1)
    assert receiver.calls[0][1]["status"] == "failed"
    ready = ctx.models.catalog.get(compiling["id"])
    assert ready["status"] == "ready" and "task_time_limit_seconds" in ready["engine"]["reason"]
    assert not ctx.models.runs.compile_pending(compiling["id"])
    for record in (training, compiling):
        ctx.models.delete(record["id"])


def test_a_callback_lost_with_its_worker_is_sent_again(store, receiver):
    """Queued once, pending until delivered: one whose message vanished goes again."""
    ctx = context.worker_context()
    record = ctx.models.create(
        {
            "id": uuid.uuid4().hex,
            "name": "lost callback",
            "owner": "admin",
            "owner_id": admin_account_id(ctx),
            "status": "ready",
            "source": "trained",
            "metrics": {"r2": 0.5},
            "callback_url": receiver.url,
        },
        CALLBACK_SECRET,
    )
    model_id = record["id"]
    # As if the worker died holding the message queued by this claim.
    assert ctx.models.runs.claim_callback(model_id, "ready", f"{model_id}:ready", time.time() - 1)
    assert not ctx.models.runs.claim_callback(model_id, "ready", f"{model_id}:ready", time.time())

    assert outcomes(receiver) == [f"{model_id}:ready"]
    assert len(receiver.calls) == 1
    assert receiver.calls[0][1]["metrics"] == {"r2": 0.5}
    member = f"{model_id}:ready"
    # Settled: no sweep sends it again.
    eventually(lambda: store.zscore(CALLBACKS_KEY, member) is None, timeout=10)
    ctx.models.delete(model_id)
