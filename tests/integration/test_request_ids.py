"""One request followed by its id: NGINX's access log, the API's line, the worker's lines
for the Celery task it started, and the training callback's ``X-Request-ID`` header.

The stack writes each process's output under its run directory (``stack.logs``):
nginx-access.log, api.log and worker.log, one JSON object per line ([logging]
format is json by default).
"""

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import CallbackReceiver, eventually, upload, wait_ready


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a log file (other output, e.g. a library's warning, left out)."""
    found = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def with_id(path: Path, request_id: str) -> list[dict[str, Any]]:
    return [line for line in json_lines(path) if line.get("request_id") == request_id]


@pytest.fixture
def receiver():
    server = CallbackReceiver()
    yield server
    server.close()


def test_a_training_request_is_followed_by_its_id(stack, client, new_user, customers, receiver):
    name, _, token = new_user()
    dataset = upload(client, token, customers)
    answer = client.post(
        "/resource/models",
        token,
        json={
            "dataset_id": dataset,
            "target": "plan",
            "estimator": "LogisticRegression",
            "params": {"max_iter": 200},
            "compile": False,
            "callback_url": receiver.url,
            "callback_secret": "a-callback-secret",
        },
    )
    assert answer.status_code == 202, answer.text
    request_id = answer.headers["X-Request-ID"]
    assert len(request_id) == 32 and int(request_id, 16) >= 0  # NGINX's own
    model_id, task_id = answer.json()["model_id"], answer.json()["task_id"]
    assert wait_ready(client, token, model_id)["status"] == "ready"
    receiver.wait(1)

    # NGINX: one JSON line for the request, with the id it sent to the API.
    [access] = eventually(lambda: with_id(stack.logs / "nginx-access.log", request_id))
    assert access["method"] == "POST"
    assert access["uri"] == "/resource/models"
    assert access["status"] == 202
    assert access["logger"] == "nginx.access"
    assert isinstance(access["duration_s"], float)

    # The API: one access line, naming the route, the user, the model and the task.
    [api] = eventually(lambda: with_id(stack.logs / "api.log", request_id))
    assert api["logger"] == "mlservice.access"
    assert api["message"] == "POST /resource/models 202"
    assert {k: api[k] for k in ("level", "route", "status", "user", "model_id", "task_id")} == {
        "level": "INFO",
        "route": "/resource/models",
        "status": 202,
        "user": name,
        "model_id": model_id,
        "task_id": task_id,
    }
    assert isinstance(api["duration_s"], float)

    # The worker: the training task's lines, and the callback task's, carry the id.
    def worker_lines() -> list[dict[str, Any]]:
        found = with_id(stack.logs / "worker.log", request_id)
        names = {line.get("task_name") for line in found}
        assert {"mlservice.tasks.train_model", "mlservice.tasks.send_callback"} <= names
        return found

    worker = eventually(worker_lines)
    training = [line for line in worker if line["task_name"] == "mlservice.tasks.train_model"]
    assert {line["task_id"] for line in training} == {task_id}
    assert {line["model_id"] for line in worker} == {model_id}
    assert any("succeeded" in line["message"] for line in training)

    # The callback names the request that started the training.
    headers, _ = receiver.calls[0]
    assert headers["X-Request-ID"] == request_id


def test_an_init_request_is_followed_by_its_id(stack, client, admin_token, admin_credentials):
    answer = client.get("/resource/init?async=true", admin_token)
    assert answer.status_code == 202, answer.text
    request_id, task_id = answer.headers["X-Request-ID"], answer.json()["task_id"]

    [api] = eventually(lambda: with_id(stack.logs / "api.log", request_id))
    assert (api["route"], api["status"], api["user"], api["task_id"]) == (
        "/resource/init",
        202,
        admin_credentials[0],
        task_id,
    )

    def init_done() -> list[dict[str, Any]]:
        lines = with_id(stack.logs / "worker.log", request_id)
        assert any("succeeded" in line["message"] for line in lines), lines
        return lines

    lines = eventually(init_done, timeout=120)
    assert {(line["task_id"], line["task_name"]) for line in lines} == {
        (task_id, "mlservice.tasks.init_service")
    }


def test_a_sane_client_id_is_kept_and_another_replaced(stack, client):
    kept = client.get("/healthz", headers={"X-Request-ID": "client-trace:42.a_b"})
    assert kept.headers["X-Request-ID"] == "client-trace:42.a_b"
    [api] = eventually(lambda: with_id(stack.logs / "api.log", "client-trace:42.a_b"))
    assert (api["route"], api["status"]) == ("/healthz", 200)
    assert "user" not in api

    replaced = client.get("/healthz", headers={"X-Request-ID": "x" * 129})
    new_id = replaced.headers["X-Request-ID"]
    assert len(new_id) == 32 and int(new_id, 16) >= 0
    [access] = eventually(lambda: with_id(stack.logs / "nginx-access.log", new_id))
    assert access["uri"] == "/healthz"


def test_nginx_logs_its_own_answers_with_an_id(stack, client):
    answer = client.get("/_protected/artifacts/nothing")  # internal: NGINX answers 404
    assert answer.status_code == 404
    request_id = answer.headers["X-Request-ID"]
    [access] = eventually(lambda: with_id(stack.logs / "nginx-access.log", request_id))
    assert (access["uri"], access["status"]) == ("/_protected/artifacts/nothing", 404)
