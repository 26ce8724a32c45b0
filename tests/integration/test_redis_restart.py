"""The Celery worker survives a Redis restart: it reconnects and takes new work within a minute.

A stack of its own (the session's is left alone): a long training runs on one
of the worker's two pool processes when redis-server is killed (-9) and
started again on the same port, its AOF replayed. The worker must not give up
(Celery 5.7.0 logged ``Unrecoverable error: AttributeError(... 'hostname')``
here and took nothing until its running task ended); a short training sent
after the restart is taken by the free pool process and is ready within a
minute, while the long one still runs.
"""

from __future__ import annotations

import signal
import time

import pytest
import requests

from mlservice.stack import Stack
from tests.conftest import ADMIN, Client, stack_of_its_own
from tests.helpers import eventually, train, upload, wait_ready

#: The worker takes new work this long after Redis is back, at most.
TAKES_WORK_WITHIN_SECONDS = 60


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory):
    """A whole stack (Redis, worker, beat, API, NGINX) of its own, for this module only."""
    service = stack_of_its_own(tmp_path_factory.mktemp("redis-restart"), celery_concurrency=2)
    service.start()
    yield service
    service.stop()


def long_training(dataset_id: str) -> dict:
    """A training that keeps one pool process busy until it is deleted, in little memory."""
    return {
        "dataset_id": dataset_id,
        "target": "income",
        "features": ["age", "city"],
        "estimator": "MLPRegressor",
        "params": {
            "hidden_layer_sizes": [256, 256],
            "max_iter": 100000,
            "tol": 0.0,
            "n_iter_no_change": 100000,
            "random_state": 0,
        },
        "compile": False,
    }


def restart_redis(stack: Stack) -> float:
    """kill -9 redis-server, then start it again on the same port: when it answered."""
    redis_process = stack.processes.pop("redis")
    redis_process.send_signal(signal.SIGKILL)
    redis_process.wait(timeout=20)
    time.sleep(3)  # the worker notices: its connections fail
    stack.start_redis()
    return time.monotonic()


def test_the_worker_takes_new_work_within_a_minute_of_a_redis_restart(own_stack, customers):
    client = Client(own_stack.url, requests.Session())
    token = client.token(*ADMIN)
    dataset_id = upload(client, token, customers)
    slow = train(client, token, long_training(dataset_id))
    eventually(
        lambda: (
            client.get(f"/resource/models/{slow['model_id']}", token).json()["status"] == "training"
        ),
        timeout=60,
        message="the long training never started",
    )
    back_at = restart_redis(own_stack)

    def sent() -> dict:
        body = {"dataset_id": dataset_id, "target": "plan", "estimator": "LogisticRegression"}
        return train(client, token, body | {"compile": False})

    quick = eventually(sent, timeout=30, message="the API could not send a training")
    record = wait_ready(client, token, quick["model_id"], timeout=TAKES_WORK_WITHIN_SECONDS)
    taken_after = time.monotonic() - back_at
    assert record["status"] == "ready", record
    assert taken_after < TAKES_WORK_WITHIN_SECONDS
    assert own_stack.processes["worker"].poll() is None  # the worker lived on
    status = client.get(f"/resource/models/{slow['model_id']}", token).json()["status"]
    assert status == "training", "the long run ended before the quick one: nothing was shown"
    log = (own_stack.logs / "worker.log").read_text(errors="replace")
    assert "Unrecoverable error" not in log
    assert "optional breaking change" not in log  # Celery's warning, once per reconnect
    assert client.delete(f"/resource/models/{slow['model_id']}", token).status_code == 204
