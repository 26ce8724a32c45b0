"""Read-your-writes across API workers: once a write has answered, no worker acts on the old state.

Every worker remembers the token's user and the model's version and record
until Redis says the key changed (``CLIENT TRACKING`` broadcast, read before
each use). So right after a delete, a revocation or a retrain has answered,
requests sent at once, spread over every worker, all see it; and when the
invalidation connection is killed, workers read Redis on every request until
it is back: slower, never stale.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from mlservice.store import published
from mlservice.store.key_tracking import CLIENT_NAME
from tests.helpers import eventually, train, upload, wait_ready

#: Concurrent requests sent at once: enough to reach every API worker of the stack.
AT_ONCE = 32


def burst(stack, path: str, token: str, body: dict) -> list[requests.Response]:
    """``AT_ONCE`` predictions sent together, each on its own connection (so every worker
    answers some)."""

    def call(_: int) -> requests.Response:
        with requests.Session() as session:
            return session.post(
                f"{stack.url}{path}",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )

    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        return list(pool.map(call, range(AT_ONCE)))


def kill_tracking_connections(store) -> int:
    """Kill every API worker's invalidation connection (as a network fault would); how many."""
    killed = 0
    for client in store.client_list():
        if client.get("name") == CLIENT_NAME:
            killed += store.client_kill_filter(_id=client["id"])
    return killed


def warm(stack, path: str, token: str, body: dict) -> set[str]:
    """Predict until every API worker has answered (and so remembers the model)."""
    workers = len(stack.api_worker_pids())
    seen: set[str] = set()

    def everyone() -> bool:
        for answer in burst(stack, path, token, body):
            assert answer.status_code == 200, answer.text
            seen.add(answer.headers["X-Served-By"])
        return len(seen) >= workers

    eventually(everyone, timeout=60, interval=0, message="not every worker answered")
    return seen


def test_a_deleted_model_is_404_on_every_worker_at_once(stack, client, admin_token, customers):
    dataset_id = upload(client, admin_token, customers)
    body = {"dataset_id": dataset_id, "target": "plan", "estimator": "LogisticRegression"}
    model_id = train(client, admin_token, body)["model_id"]
    assert wait_ready(client, admin_token, model_id)["status"] == "ready"
    path = f"/resource/models/{model_id}/predict"
    record = {"age": 30.0, "city": "Lyon", "income": 40000.0}
    warm(stack, path, admin_token, record)
    assert client.delete(f"/resource/models/{model_id}", admin_token).status_code == 204
    statuses = [answer.status_code for answer in burst(stack, path, admin_token, record)]
    assert statuses == [404] * AT_ONCE


def test_a_revoked_token_is_401_on_every_worker_at_once(
    stack, client, initialised, iris_record, new_user
):
    name, password, token = new_user()
    warm(stack, "/resource/predict", token, iris_record)
    change = {"password": "a-brand-new-password", "current_password": password}
    assert client.request("PATCH", f"/resource/users/{name}", token, json=change).status_code == 200
    statuses = [a.status_code for a in burst(stack, "/resource/predict", token, iris_record)]
    assert statuses == [401] * AT_ONCE


def test_a_retrain_is_served_by_every_worker_at_once(
    stack, client, admin_token, initialised, iris_record, store
):
    warm(stack, "/resource/predict", admin_token, iris_record)
    assert client.get("/resource/init", admin_token).status_code == 204
    version = str(published.current_version(store, published.DEFAULT_MODEL_ID))
    answers = burst(stack, "/resource/predict", admin_token, iris_record)
    assert {answer.headers["X-Model-Version"] for answer in answers} == {version}


def test_a_killed_invalidation_link_serves_nothing_stale(
    stack, client, admin_token, initialised, iris_record, store
):
    """Under load, the tracking connections are killed, then the model is republished: from
    the moment the publish returned, no answer names the old version, and every request is
    answered."""
    warm(stack, "/resource/predict", admin_token, iris_record)
    stop = threading.Event()
    answers: list[tuple[float, int, str]] = []

    def load() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                started = time.monotonic()
                response = session.post(
                    f"{stack.url}/resource/predict",
                    json=iris_record,
                    headers={"Authorization": f"Bearer {admin_token}"},
                    timeout=30,
                )
                served = response.headers.get("X-Model-Version", "")
                answers.append((started, response.status_code, served))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        assert kill_tracking_connections(store) >= 1
        data = store.get(f"mlservice:model:{published.DEFAULT_MODEL_ID}:bundle")
        version = published.publish(store, published.DEFAULT_MODEL_ID, data)
        published_at = time.monotonic()
        time.sleep(3)  # the links come back meanwhile (tried again within a second)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert answers and {status for _, status, _ in answers} == {200}
    after = [served for started, _, served in answers if started > published_at]
    assert after and set(after) == {str(version)}
