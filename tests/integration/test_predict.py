"""/resource/predict through NGINX: shapes, labels, errors, and every worker agreeing."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.helpers import eventually

COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
FLOWERS = [
    (dict(zip(COLUMNS, [5.1, 3.5, 1.4, 0.2], strict=True)), "setosa"),
    (dict(zip(COLUMNS, [6.4, 3.2, 4.5, 1.5], strict=True)), "versicolor"),
    (dict(zip(COLUMNS, [7.7, 3.0, 6.1, 2.3], strict=True)), "virginica"),
]


@pytest.fixture(autouse=True)
def _model(initialised):
    """Every test here needs the default model."""


def test_one_record_gives_a_label(client, admin_token, iris_record):
    response = client.post("/resource/predict", admin_token, json=iris_record)
    assert response.status_code == 200
    assert response.json() == {"predictions": ["setosa"]}


def test_list_and_instances_shapes(client, admin_token):
    records = [record for record, _ in FLOWERS]
    labels = [label for _, label in FLOWERS]
    assert (
        client.post("/resource/predict", admin_token, json=records).json()["predictions"] == labels
    )
    body = {"instances": records}
    assert client.post("/resource/predict", admin_token, json=body).json()["predictions"] == labels


def test_probabilities_when_asked(client, admin_token, iris_record):
    body = client.post("/resource/predict?probabilities=true", admin_token, json=iris_record).json()
    assert body["predictions"] == ["setosa"]
    probabilities = body["probabilities"][0]
    assert set(probabilities) == {"setosa", "versicolor", "virginica"}
    assert sum(probabilities.values()) == pytest.approx(1.0)
    assert max(probabilities, key=probabilities.get) == "setosa"


def test_missing_value_is_imputed(client, admin_token, iris_record):
    iris_record["sepal width (cm)"] = None
    response = client.post("/resource/predict", admin_token, json=iris_record)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "data, status, words",
    [
        ('{"sepal length (cm)": 5.1,', 400, ["not valid JSON"]),
        ("", 400, ["empty"]),
        ('"just a string"', 400, ["JSON object"]),
        ("[]", 400, ["empty"]),
    ],
)
def test_malformed_bodies_are_400(client, admin_token, data, status, words):
    response = client.post(
        "/resource/predict", admin_token, data=data, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    for word in words:
        assert word in response.json()["status"]


def test_wrong_content_type_is_415(client, admin_token):
    response = client.post(
        "/resource/predict", admin_token, data="a,b\n1,2", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415  # CSV is read (tests/integration/test_predict_formats.py)


def test_missing_column_is_named(client, admin_token, iris_record):
    del iris_record["petal width (cm)"]
    response = client.post("/resource/predict", admin_token, json=iris_record)
    assert response.status_code == 422
    assert "'petal width (cm)'" in response.json()["status"]


def test_wrong_type_is_named(client, admin_token, iris_record):
    iris_record["petal length (cm)"] = "long"
    response = client.post("/resource/predict", admin_token, json=[iris_record])
    assert response.status_code == 422
    message = response.json()["status"]
    assert "'petal length (cm)'" in message and "number" in message
    assert "Traceback" not in response.text


def test_predictions_from_different_workers_agree(stack, admin_token):
    """Concurrent requests reach both Gunicorn workers; each has its own cache."""
    records = [record for record, _ in FLOWERS] * 10
    seen: dict[str, set] = {}

    def call(_):
        with requests.Session() as session:  # a new connection per call
            response = session.post(
                f"{stack.url}/resource/predict",
                json=records,
                headers={"Authorization": f"Bearer {admin_token}"},
                timeout=30,
            )
        assert response.status_code == 200
        return response.headers["X-Served-By"], tuple(response.json()["predictions"])

    def two_workers_answered() -> bool:
        with ThreadPoolExecutor(max_workers=16) as pool:
            for worker, predictions in pool.map(call, range(48)):
                seen.setdefault(worker, set()).add(predictions)
        return len(seen) >= 2

    eventually(
        two_workers_answered,
        timeout=60,
        interval=0,
        message=lambda: f"only worker(s) {list(seen)} answered",
        retry_on=(),
    )
    answers = set().union(*seen.values())
    assert answers == {tuple(label for _, label in FLOWERS) * 10}


def test_every_worker_sees_a_retrain(stack, client, admin_token, iris_record):
    """Once a new init has answered, every worker answers from the new version
    (X-Model-Version)."""
    assert client.get("/resource/init", admin_token).status_code == 204
    from mlservice import redis_client
    from mlservice.config import load_settings
    from mlservice.store import published as model_store

    settings = load_settings(stack.env())
    store = redis_client.connect(settings.redis)
    version = str(model_store.current_version(store, model_store.DEFAULT_MODEL_ID))

    def call(_):
        with requests.Session() as session:
            response = session.post(
                f"{stack.url}/resource/predict",
                json=iris_record,
                headers={"Authorization": f"Bearer {admin_token}"},
                timeout=30,
            )
        return response.headers["X-Served-By"], response.headers["X-Model-Version"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = set(pool.map(call, range(64)))
    assert {model_version for _, model_version in answers} == {version}
