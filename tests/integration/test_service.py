"""/resource/init (sync and async), task status and ownership, the model cache."""

from mlservice.store import published as model_store
from tests.helpers import eventually


def wait_for_task(client, token, location, timeout=60):
    def done():
        response = client.get(location, token)
        assert response.status_code == 200, response.text
        status = response.json()
        return status if status["done"] else None

    return eventually(done, timeout=timeout, message=f"task {location} not done", retry_on=())


def test_predict_before_init_is_424(client, admin_token, store, iris_record):
    model_store.unpublish(store, model_store.DEFAULT_MODEL_ID)
    try:
        response = client.post("/resource/predict", admin_token, json=iris_record)
        assert response.status_code == 424
        assert "/resource/init" in response.json()["status"]
    finally:
        assert client.get("/resource/init", admin_token).status_code == 204


def test_sync_init_returns_204_and_publishes_a_new_version(client, admin_token, store):
    before = model_store.current_version(store, model_store.DEFAULT_MODEL_ID) or 0
    response = client.get("/resource/init", admin_token)
    assert response.status_code == 204
    assert response.content == b""
    assert model_store.current_version(store, model_store.DEFAULT_MODEL_ID) > before


def test_async_init_returns_202_with_location_and_finishes(client, admin_token):
    response = client.get("/resource/init?async=true", admin_token)
    assert response.status_code == 202
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    location = response.headers["Location"]
    assert body == {"task_id": body["task_id"], "status_url": location}
    assert location == f"/resource/task/status/{body['task_id']}"
    status = wait_for_task(client, admin_token, location)
    assert status["state"] == "SUCCESS" and status["progress"] == 1.0
    assert status["result"]["model_id"] == "default"
    assert status["result"]["metrics"]["accuracy"] > 0.8


def test_task_status_reports_states_in_order(client, admin_token):
    location = client.get("/resource/init?async=true", admin_token).headers["Location"]
    seen = []

    def done():
        status = client.get(location, admin_token).json()
        assert set(status) >= {"done", "status", "state", "progress"}
        assert 0.0 <= status["progress"] <= 1.0
        assert isinstance(status["status"], str) and status["status"]
        seen.append(status["state"])
        return status["done"]

    eventually(done, timeout=60, interval=0.05, message=f"task {location} not done", retry_on=())
    assert seen[-1] == "SUCCESS"
    order = ["PENDING", "STARTED", "PROGRESS", "SUCCESS"]
    assert [order.index(state) for state in seen] == sorted(order.index(state) for state in seen)


def test_another_user_cannot_see_my_task(client, new_user, admin_token):
    _, _, alice = new_user()
    _, _, bob = new_user()
    location = client.get("/resource/init?async=true", alice).headers["Location"]
    assert client.get(location, alice).status_code == 200
    response = client.get(location, bob)
    assert response.status_code == 404
    assert "state" not in response.json()
    assert client.get(location, admin_token).status_code == 200  # admins see every task
    wait_for_task(client, alice, location)


def test_unknown_task_is_404(client, admin_token):
    assert client.get("/resource/task/status/not-a-task", admin_token).status_code == 404


def test_task_status_needs_a_token(client):
    assert client.get("/resource/task/status/" + "0" * 32).status_code == 401


def test_bad_async_flag_is_400(client, admin_token):
    response = client.get("/resource/init?async=maybe", admin_token)
    assert response.status_code == 400
    assert "async" in response.json()["status"]
