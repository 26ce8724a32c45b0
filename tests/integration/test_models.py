"""/resource/models: validated requests, asynchronous training, predictions, bundles, callbacks."""

import hashlib
import hmac
import json
import pickle

import numpy as np
import pandas as pd
import pytest

from mlservice import security
from tests.helpers import CallbackReceiver, eventually, train, upload, wait_ready


@pytest.fixture(scope="module")
def trained(client, admin_token, customers):
    """A classifier on string labels, trained once for the module."""
    dataset_id = upload(client, admin_token, customers)
    accepted = train(
        client,
        admin_token,
        {
            "dataset_id": dataset_id,
            "target": "plan",
            "features": ["age", "city"],
            "estimator": "RandomForestClassifier",
            "params": {"n_estimators": 30, "max_depth": 6},
            "cv": 3,
            "name": "plans",
        },
    )
    record = wait_ready(client, admin_token, accepted["model_id"])
    assert record["status"] == "ready", record
    return {"dataset_id": dataset_id, **accepted, "record": record}


def test_training_is_accepted_at_once_with_a_task(client, admin_token, trained):
    assert trained["location"] == f"/resource/task/status/{trained['task_id']}"
    # The model is ready before the task ends: the task then compiles it to ONNX.

    def task_done():
        status = client.get(trained["location"], admin_token).json()
        assert status["state"] in ("PROGRESS", "STARTED", "SUCCESS"), status
        return status if status["done"] else None

    status = eventually(
        task_done, timeout=120, message="the training task did not end", retry_on=()
    )
    assert status["state"] == "SUCCESS"
    assert status["result"]["engine"]["name"] in ("onnxruntime", "scikit-learn")


def test_model_info_has_metrics_schema_and_timings(trained):
    record = trained["record"]
    assert record["name"] == "plans" and record["estimator"] == "RandomForestClassifier"
    assert record["params"] == {"n_estimators": 30, "max_depth": 6}
    assert record["classes"] == ["basic", "premium"]
    metrics = record["metrics"]
    assert metrics["accuracy"] > 0.8
    assert {"balanced_accuracy", "f1_macro", "roc_auc", "confusion_matrix"} <= set(metrics)
    assert len(metrics["cv"]["scores"]) == 3
    assert metrics["train_rows"] + metrics["test_rows"] == 400
    schema = {column["name"]: column for column in record["input_schema"]}
    assert schema["age"]["type"] == "number"
    assert schema["city"] == {
        "name": "city",
        "type": "string",
        "categories": ["Lyon", "Nice", "Paris"],
    }
    assert record["training_seconds"] > 0 and record["finished_at"] >= record["started_at"]
    assert record["versions"]["scikit-learn"]


def test_predictions_keep_string_labels_and_accept_unseen_categories(client, admin_token, trained):
    records = [
        {"age": 70, "city": "Paris"},
        {"age": 20, "city": "Atlantis"},
        {"age": None, "city": None},
    ]
    response = client.post(
        f"/resource/models/{trained['model_id']}/predict?probabilities=true",
        admin_token,
        json={"instances": records},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["predictions"][:2] == ["premium", "basic"]
    assert body["predictions"][2] in ("basic", "premium")
    assert set(body["probabilities"][0]) == {"basic", "premium"}


def test_model_predict_without_a_token_is_401(client, trained):
    response = client.post(
        f"/resource/models/{trained['model_id']}/predict", json={"age": 30, "city": "Lyon"}
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "missing bearer token" in response.json()["status"]


def test_model_predict_errors_name_the_column(client, admin_token, trained):
    url = f"/resource/models/{trained['model_id']}/predict"
    missing = client.post(url, admin_token, json={"age": 30})
    assert missing.status_code == 422 and "'city'" in missing.json()["status"]
    wrong = client.post(url, admin_token, json={"age": "old", "city": "Lyon"})
    assert wrong.status_code == 422 and "'age'" in wrong.json()["status"]


def test_regression_target(client, admin_token, customers):
    dataset_id = upload(client, admin_token, customers)
    accepted = train(
        client,
        admin_token,
        {
            "dataset_id": dataset_id,
            "target": "income",
            "estimator": "HistGradientBoostingRegressor",
            "params": {"max_iter": 50},
        },
    )
    record = wait_ready(client, admin_token, accepted["model_id"])
    assert record["status"] == "ready" and record["task"] == "regression"
    assert {"r2", "rmse", "mae"} <= set(record["metrics"]) and record["metrics"]["r2"] > 0.8
    response = client.post(
        f"/resource/models/{accepted['model_id']}/predict",
        admin_token,
        json=[{"age": 40, "city": "Lyon", "plan": "basic"}],
    )
    assert response.status_code == 200
    assert isinstance(response.json()["predictions"][0], float)


@pytest.mark.parametrize(
    "change, status, words",
    [
        ({"estimator": "DeepMagicNet"}, 422, ["unknown estimator", "DeepMagicNet"]),
        ({"params": {"n_trees": 5}}, 422, ["unknown parameter 'n_trees'"]),
        ({"params": {"n_estimators": "many"}}, 422, ["'n_estimators' parameter"]),
        ({"target": "colour"}, 422, ["target 'colour'"]),
        ({"features": ["age", "shoe size"]}, 422, ["'shoe size'"]),
        ({"estimator": "Ridge", "params": {}}, 422, ["regressor", "numbers"]),
        (
            {"estimator": "LogisticRegression", "params": {}, "target": "income"},
            422,
            ["distinct values", "regressor"],
        ),
        ({"dataset_id": "no-such-dataset"}, 400, ["'dataset_id' must be a data set id"]),
        ({"dataset_id": "0" * 32}, 404, ["no dataset"]),
        ({"test_size": 2}, 422, ["test_size"]),
        ({"cv": 1}, 422, ["cv"]),
        ({"colour": "blue"}, 400, ["unknown field"]),
        ({"target_is_categorical": "yes"}, 400, ["'target_is_categorical' must be true or false"]),
        ({"callback_url": "ftp://example.org/x", "callback_secret": "s" * 16}, 422, ["http"]),
        ({"callback_url": "http://127.0.0.1:1/x"}, 422, ["callback_secret"]),
        ({"callback_secret": "s" * 16}, 422, ["needs a 'callback_url'"]),
    ],
)
def test_bad_training_requests_are_refused_up_front(
    client, admin_token, trained, store, change, status, words
):
    body = {
        "dataset_id": trained["dataset_id"],
        "target": "plan",
        "features": ["age", "city"],
        "estimator": "RandomForestClassifier",
        "params": {},
    } | change
    models_before = store.zcard("mlservice:models")
    response = client.post("/resource/models", admin_token, json=body)
    assert response.status_code == status, response.text
    for word in words:
        assert word in response.json()["status"]
    assert store.zcard("mlservice:models") == models_before


@pytest.fixture(scope="module")
def coded(client, admin_token):
    """400 rows: ``price`` has 354 distinct integers; ``code`` has 60 integer classes."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=400)
    price = np.concatenate([np.arange(354), np.arange(46)]) * 10 + 1000
    code = 100 + np.arange(400) % 60
    frame = pd.DataFrame({"x": x, "shade": code * 2 + rng.normal(0, 0.1, 400)})
    frame["price"], frame["code"] = price, code
    dataset_id = upload(client, admin_token, frame)
    profile = client.get(f"/resource/datasets/{dataset_id}", admin_token).json()
    distinct = {
        column["name"]: (column["dtype"], column["distinct"]) for column in profile["columns"]
    }
    assert distinct["price"] == ("integer", 354) and distinct["code"] == ("integer", 60)
    return dataset_id


def test_a_classifier_on_a_continuous_target_is_refused(client, admin_token, store, coded):
    models_before = store.zcard("mlservice:models")
    response = client.post(
        "/resource/models",
        admin_token,
        json={"dataset_id": coded, "target": "price", "estimator": "RandomForestClassifier"},
    )
    assert response.status_code == 422, response.text
    assert response.json() == {
        "status": "target 'price' looks continuous: it is integer with 354 distinct values in "
        "400 rows, and RandomForestClassifier is a classifier, which would take each value as "
        "a class; use a regressor such as RandomForestRegressor, or, if these values are "
        'classes, send "target_is_categorical": true (at most 1000 classes)'
    }
    assert store.zcard("mlservice:models") == models_before
    regressor = train(
        client,
        admin_token,
        {"dataset_id": coded, "target": "price", "estimator": "RandomForestRegressor"},
    )
    assert wait_ready(client, admin_token, regressor["model_id"])["status"] == "ready"


def test_target_is_categorical_trains_integer_classes(client, admin_token, coded):
    body = {
        "dataset_id": coded,
        "target": "code",
        "features": ["shade"],
        "estimator": "DecisionTreeClassifier",
    }
    refused = client.post("/resource/models", admin_token, json=body)
    assert refused.status_code == 422 and "looks continuous" in refused.json()["status"]
    accepted = train(client, admin_token, body | {"target_is_categorical": True})
    record = wait_ready(client, admin_token, accepted["model_id"])
    assert record["status"] == "ready", record
    assert record["classes"] == list(range(100, 160))
    assert record["metrics"]["accuracy"] == 1.0
    response = client.post(
        f"/resource/models/{accepted['model_id']}/predict", admin_token, json={"shade": 242.0}
    )
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == [121]


def test_estimators_are_listed_with_defaults(client, admin_token):
    estimators = client.get("/resource/estimators", admin_token).json()["estimators"]
    by_name = {entry["name"]: entry for entry in estimators}
    assert len(by_name) >= 30
    assert by_name["HistGradientBoostingClassifier"]["task"] == "classification"
    assert by_name["SVR"]["task"] == "regression"
    assert by_name["LogisticRegression"]["params"]["C"] == 1.0
    assert by_name["LogisticRegression"]["param_types"]["C"] == "number"
    assert by_name["XGBClassifier"]["module"] == "xgboost"
    assert by_name["XGBRegressor"]["params"]["n_jobs"] == 1
    assert by_name["LGBMRegressor"]["param_types"]["num_leaves"] == "integer"
    assert by_name["LGBMClassifier"]["task"] == "classification"


def test_download_and_upload_a_bundle(client, admin_token, new_user, trained):
    bundle = client.get(f"/resource/models/{trained['model_id']}/download", admin_token)
    assert bundle.status_code == 200
    assert bundle.headers["Content-Type"] == "application/octet-stream"
    _, _, token = new_user()
    uploaded = client.post(
        "/resource/models/upload", token, files={"file": ("plans.mlbundle", bundle.content)}
    )
    assert uploaded.status_code == 201, uploaded.text
    new_id = uploaded.json()["id"]
    assert new_id != trained["model_id"] and uploaded.json()["status"] == "ready"
    record = {"age": 70, "city": "Paris"}
    original = client.post(
        f"/resource/models/{trained['model_id']}/predict", admin_token, json=record
    ).json()
    copy = client.post(f"/resource/models/{new_id}/predict", token, json=record).json()
    assert copy == original


def test_tampered_bundle_and_raw_pickle_are_refused(client, admin_token, trained, store):
    bundle = bytearray(
        client.get(f"/resource/models/{trained['model_id']}/download", admin_token).content
    )
    bundle[len(bundle) // 2] ^= 0x01

    class Exploit:
        def __reduce__(self):
            return (open, ("/tmp/mlservice-pwned", "w"))

    models_before = store.zcard("mlservice:models")
    for payload in (bytes(bundle), pickle.dumps(Exploit()), b"MLSBNDL1" + b"x" * 64):
        response = client.post(
            "/resource/models/upload", admin_token, files={"file": ("evil.mlbundle", payload)}
        )
        assert response.status_code == 400
        assert (
            "signature" in response.json()["status"]
            or "not a model bundle" in response.json()["status"]
        )
    assert store.zcard("mlservice:models") == models_before
    import os

    assert not os.path.exists("/tmp/mlservice-pwned")


def test_other_users_model_is_404(client, admin_token, new_user, trained):
    _, _, other = new_user()
    model_id = trained["model_id"]
    assert client.get(f"/resource/models/{model_id}", other).status_code == 404
    assert (
        client.post(
            f"/resource/models/{model_id}/predict", other, json={"age": 1, "city": "Lyon"}
        ).status_code
        == 404
    )
    assert client.get(f"/resource/models/{model_id}/download", other).status_code == 404
    assert client.delete(f"/resource/models/{model_id}", other).status_code == 404
    assert client.get("/resource/models", other).json()["total"] == 0
    body = {
        "dataset_id": trained["dataset_id"],
        "target": "plan",
        "features": ["age", "city"],
        "estimator": "GaussianNB",
        "params": {},
    }
    assert client.post("/resource/models", other, json=body).status_code == 404
    assert client.get(f"/resource/task/status/{trained['task_id']}", other).status_code == 404


def test_delete_is_seen_by_every_worker(client, admin_token, trained, customers, settings):
    """Once the delete has answered, every worker answers 404."""
    accepted = train(
        client,
        admin_token,
        {
            "dataset_id": trained["dataset_id"],
            "target": "plan",
            "features": ["age", "city"],
            "estimator": "LogisticRegression",
            "params": {},
        },
    )
    model_id = accepted["model_id"]
    assert wait_ready(client, admin_token, model_id)["status"] == "ready"
    for _ in range(8):  # warm several workers' caches
        assert (
            client.post(
                f"/resource/models/{model_id}/predict",
                admin_token,
                json={"age": 30, "city": "Lyon"},
            ).status_code
            == 200
        )
    assert client.delete(f"/resource/models/{model_id}", admin_token).status_code == 204
    for _ in range(8):
        assert (
            client.post(
                f"/resource/models/{model_id}/predict",
                admin_token,
                json={"age": 30, "city": "Lyon"},
            ).status_code
            == 404
        )
    assert client.get(f"/resource/models/{model_id}/download", admin_token).status_code == 404


CALLBACK_SECRET = "receiver-chosen-secret"


def test_callback_is_signed_and_retried(client, admin_token, trained, store, settings):
    """Signed with the client's callback_secret, never with the service secret."""
    receiver = CallbackReceiver(failures=2)
    try:
        accepted = train(
            client,
            admin_token,
            {
                "dataset_id": trained["dataset_id"],
                "target": "plan",
                "features": ["age", "city"],
                "estimator": "GaussianNB",
                "params": {},
                "callback_url": receiver.url,
                "callback_secret": CALLBACK_SECRET,
            },
        )
        receiver.wait(3)
    finally:
        receiver.close()
    headers, body = receiver.calls[-1]
    payload = json.loads(body)
    assert payload["model_id"] == accepted["model_id"] and payload["status"] == "ready"
    assert payload["metrics"]["accuracy"] > 0.5
    expected = hmac.new(
        CALLBACK_SECRET.encode(),
        headers["X-MLService-Timestamp"].encode() + b"." + body,
        hashlib.sha256,
    ).hexdigest()
    assert headers["X-MLService-Signature"] == f"sha256={expected}"
    service_secret = security.service_secret(store, settings.security.secret_key)
    assert (
        service_secret.encode() not in body
        and "callback_secret"
        not in client.get(f"/resource/models/{accepted['model_id']}", admin_token).json()
    )


def test_failed_training_calls_back_with_the_error(client, admin_token, customers):
    receiver = CallbackReceiver()
    small = customers.head(30)
    try:
        dataset_id = upload(client, admin_token, small)
        accepted = train(
            client,
            admin_token,
            {
                "dataset_id": dataset_id,
                "target": "plan",
                "features": ["age", "city"],
                "estimator": "LogisticRegression",
                "params": {},
                "cv": 20,
                "callback_url": receiver.url,
                "callback_secret": CALLBACK_SECRET,
            },
        )
        record = wait_ready(client, admin_token, accepted["model_id"])
        receiver.wait(1)
    finally:
        receiver.close()
    assert record["status"] == "failed" and "n_splits" in record["error"]
    payload = json.loads(receiver.calls[0][1])
    assert payload == {
        "model_id": accepted["model_id"],
        "status": "failed",
        "error": record["error"],
        "delivery_id": f"{accepted['model_id']}:failed",
    }
    status = client.get(accepted["location"], admin_token).json()
    assert status["state"] == "FAILURE" and "n_splits" in status["error"]


def test_callback_that_never_succeeds_changes_nothing(client, admin_token, trained):
    receiver = CallbackReceiver(failures=1000)
    try:
        accepted = train(
            client,
            admin_token,
            {
                "dataset_id": trained["dataset_id"],
                "target": "plan",
                "features": ["age", "city"],
                "estimator": "GaussianNB",
                "params": {},
                "callback_url": receiver.url,
                "callback_secret": CALLBACK_SECRET,
            },
        )
        receiver.wait(2)
    finally:
        receiver.close()
    record = client.get(f"/resource/models/{accepted['model_id']}", admin_token).json()
    assert record["status"] == "ready" and "error" not in record
    assert (
        client.post(
            f"/resource/models/{accepted['model_id']}/predict",
            admin_token,
            json={"age": 30, "city": "Lyon"},
        ).status_code
        == 200
    )
