"""Routes through Flask's test client: what they refuse, store and enqueue, with no worker."""

from __future__ import annotations

import dataclasses
import io

import pytest
from celery import Celery

from mlservice.app import create_app
from mlservice.celery_app import TRAINING_QUEUE
from tests.data import make_customers
from tests.route.conftest import token_for


@pytest.fixture(scope="module")
def customers_csv() -> bytes:
    return make_customers.customers().head(120).to_csv(index=False).encode()


def upload(http, headers, data: bytes, name: str = "customers.csv") -> dict:
    answer = http.post(
        "/resource/datasets",
        headers=headers,
        data={"file": (io.BytesIO(data), name, "text/csv")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def test_liveness_needs_nothing_and_readiness_names_the_missing_worker(http):
    assert http.get("/healthz").get_json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json() == {"status": "not ready: no Celery worker answered"}


def test_user_bodies_are_typed_and_unknown_fields_are_400(http, admin):
    made = http.post(
        "/resource/users", headers=admin, json={"username": "rt-ann", "password": "x" * 12}
    )
    assert made.status_code == 201
    shown = made.get_json()
    assert shown == {
        "username": "rt-ann",
        "role": "user",
        "account_id": shown["account_id"],
        "disabled": False,
    }
    assert len(shown["account_id"]) == 32 and int(shown["account_id"], 16) >= 0
    taken = http.post(
        "/resource/users", headers=admin, json={"username": "rt-ann", "password": "x" * 12}
    )
    assert taken.status_code == 409
    extra = http.post(
        "/resource/users",
        headers=admin,
        json={"username": "rt-bob", "password": "x" * 12, "email": "b@example.com"},
    )
    assert extra.status_code == 400
    assert extra.get_json() == {
        "status": "unknown field(s) 'email'; known: username, password, role"
    }
    wrong = http.post("/resource/users", headers=admin, json={"username": 7, "password": "x" * 12})
    assert wrong.status_code == 400
    assert wrong.get_json()["status"].startswith("'username' must be a string")
    role = http.post(
        "/resource/users",
        headers=admin,
        json={"username": "rt-cy", "password": "x" * 12, "role": "root"},
    )
    assert role.status_code == 422 and role.get_json() == {
        "status": "role must be one of admin, user"
    }
    patch = http.patch("/resource/users/rt-ann", headers=admin, json={"colour": "red"})
    assert patch.status_code == 400
    assert patch.get_json() == {
        "status": "unknown field(s) 'colour'; known: password, role, current_password, disabled"
    }


def test_a_training_request_is_checked_field_by_field_before_anything_is_queued(http, admin, ctx):
    queued = ctx.redis.llen(TRAINING_QUEUE)
    cases = [
        (
            {"dataset_id": "nope", "target": "y", "estimator": "Ridge"},
            400,
            "'dataset_id' must be a data set id (32 hexadecimal digits)",
        ),
        ({"dataset_id": "0" * 32, "target": "y"}, 400, "'estimator' is required"),
        (
            {"dataset_id": "0" * 32, "target": "y", "estimator": "Ridge", "colour": 1},
            400,
            "unknown field(s) 'colour'; known: dataset_id, target, estimator, params, features, "
            "test_size, cv, callback_url, callback_secret, name, compile, target_is_categorical, "
            "register_as, columns",
        ),
        (
            {"dataset_id": "0" * 32, "target": "y", "estimator": "Ridge", "columns": ["a"]},
            400,
            "'columns' must map column names to roles: numeric, categorical, datetime, text, "
            'ignore (e.g. {"Name": "ignore", "Year": "datetime"})',
        ),
        (
            {"dataset_id": "0" * 32, "target": "y", "estimator": "Ridge", "test_size": 0.9},
            422,
            "'test_size' must be a number between 0.05 and 0.5",
        ),
        (
            {"dataset_id": "0" * 32, "target": "y", "estimator": "Ridge", "cv": True},
            400,
            "'cv' must be an integer between 2 and 20 (folds)",
        ),
        (
            {"dataset_id": "0" * 32, "target": "y", "estimator": "Ridge"},
            404,
            f"no dataset {'0' * 32!r}",
        ),
    ]
    for body, status, message in cases:
        answer = http.post("/resource/models", headers=admin, json=body)
        assert (answer.status_code, answer.get_json()) == (status, {"status": message}), body
    assert ctx.redis.llen(TRAINING_QUEUE) == queued


def test_an_accepted_training_is_queued_by_name_and_a_delete_leaves_nothing(
    http, admin, ctx, customers_csv
):
    dataset = upload(http, admin, customers_csv)
    assert dataset["status"] == "ready" and dataset["rows"] == 120
    queued = ctx.redis.llen(TRAINING_QUEUE)
    answer = http.post(
        "/resource/models",
        headers=admin,
        json={"dataset_id": dataset["id"], "target": "plan", "estimator": "LogisticRegression"},
    )
    assert answer.status_code == 202
    accepted = answer.get_json()
    assert answer.headers["Location"] == accepted["status_url"]
    assert ctx.redis.llen(TRAINING_QUEUE) == queued + 1  # sent, waiting for a worker
    model = http.get(f"/resource/models/{accepted['model_id']}", headers=admin).get_json()
    assert model["status"] == "queued" and model["task_id"] == accepted["task_id"]
    admin_account = ctx.accounts.current_access("admin")
    assert admin_account is not None
    assert ctx.task_owners.owner_of(accepted["task_id"]) == admin_account.account_id
    assert model["owner"] == "admin" and model["owner_id"] == admin_account.account_id
    assert http.delete(f"/resource/models/{accepted['model_id']}", headers=admin).status_code == 204
    assert http.get(f"/resource/models/{accepted['model_id']}", headers=admin).status_code == 404
    assert http.delete(f"/resource/datasets/{dataset['id']}", headers=admin).status_code == 204


def test_a_broker_out_of_reach_answers_503_and_leaves_no_queued_record(ctx, admin, customers_csv):
    unreachable = Celery("unreachable", broker="redis://celery:nothing@127.0.0.1:1/0")
    unreachable.conf.update(broker_connection_retry_on_startup=False, task_publish_retry=False)
    app = create_app(ctx=dataclasses.replace(ctx, celery=unreachable))
    with app.test_client() as http:
        dataset = upload(http, admin, customers_csv)
        before = http.get("/resource/models", headers=admin).get_json()["total"]
        answer = http.post(
            "/resource/models",
            headers=admin,
            json={"dataset_id": dataset["id"], "target": "plan", "estimator": "LogisticRegression"},
        )
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "5"
        assert answer.get_json() == {
            "status": "the task queue (Redis) is not reachable, so nothing was started; "
            "retry shortly"
        }
        assert http.get("/resource/models", headers=admin).get_json()["total"] == before


def test_another_users_model_is_not_found(http, admin, ctx):
    ctx.accounts.create("rt-eve", "y" * 12)
    models = http.get("/resource/models", headers=token_for(ctx, "rt-eve")).get_json()
    assert models["total"] == 0
