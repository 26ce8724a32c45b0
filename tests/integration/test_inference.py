"""Serving: ONNX Runtime for compiled models, batched scikit-learn otherwise, one Redis trip."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from mlservice import security
from mlservice.store import bundles, user_records
from tests.helpers import eventually, train, upload, wait_ready
from tests.reference import records_to_frame, sklearn_answer

FEATURES = ["age", "city", "income"]


def wait_compiled(client, token, model_id, timeout=120) -> dict:
    """The record once the compile step after training has decided the engine."""

    def compiled() -> dict:
        record = wait_ready(client, token, model_id, timeout)
        assert not record["engine"]["reason"].startswith("compiling"), record
        return record

    return eventually(
        compiled,
        timeout=timeout,
        message=f"model {model_id} still compiling",
        retry_on=AssertionError,
    )


@pytest.fixture(scope="module")
def dataset_id(client, admin_token, customers):
    return upload(client, admin_token, customers)


@pytest.fixture(scope="module")
def secret(store, settings):
    return security.service_secret(store, settings.security.secret_key)


def reference(client, token, model_id, secret):
    """The model's own scikit-learn pipeline, from its downloaded (signed) bundle."""
    data = client.get(f"/resource/models/{model_id}/download", token).content
    return bundles.loads(data, secret)


def rows(customers, count):
    frame = customers[FEATURES].head(count)
    return [
        {k: (None if v != v else v) for k, v in row.items()}  # NaN → null
        for row in frame.to_dict("records")
    ]


def test_a_compiled_model_is_served_by_onnx_runtime(
    client, admin_token, dataset_id, customers, secret
):
    accepted = train(
        client,
        admin_token,
        {
            "dataset_id": dataset_id,
            "target": "plan",
            "features": FEATURES,
            "estimator": "LogisticRegression",
            "params": {},
        },
    )
    record = wait_compiled(client, admin_token, accepted["model_id"])
    assert record["engine"]["name"] == "onnxruntime", record["engine"]
    assert "held-out rows" in record["engine"]["reason"]
    assert record["version"] == 2  # scikit-learn at once, then the compiled bundle
    bundle = reference(client, admin_token, accepted["model_id"], secret)
    assert bundle.engine == "onnxruntime" and bundle.onnx
    records = rows(customers, 60) + [{"age": None, "city": "Atlantis", "income": None}]
    response = client.post(
        f"/resource/models/{accepted['model_id']}/predict?probabilities=true",
        admin_token,
        json=records,
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Model-Engine"] == "onnxruntime"
    expected = sklearn_answer(bundle, records_to_frame(records, bundle.schema), probabilities=True)
    got = response.json()
    assert got["predictions"] == expected["predictions"]
    for row, want in zip(got["probabilities"], expected["probabilities"], strict=True):
        assert row == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize(
    "estimator,params",
    [
        ("HistGradientBoostingClassifier", {"max_iter": 10}),
        ("XGBClassifier", {"n_estimators": 10}),
        ("LGBMClassifier", {"n_estimators": 10}),
    ],
)
def test_boosted_trees_compile_or_say_why_in_a_sentence_and_answer(
    client, admin_token, dataset_id, customers, secret, estimator, params
):
    accepted = train(
        client,
        admin_token,
        {
            "dataset_id": dataset_id,
            "target": "plan",
            "features": FEATURES,
            "estimator": estimator,
            "params": params,
        },
    )
    record = wait_compiled(client, admin_token, accepted["model_id"])
    engine = record["engine"]
    if engine["name"] == "scikit-learn":
        assert engine["reason"].endswith(", so scikit-learn serves this model."), engine
        assert "…" not in engine["reason"]
    else:
        assert engine["reason"].startswith("compiled with skl2onnx"), engine
    bundle = reference(client, admin_token, accepted["model_id"], secret)
    records = rows(customers, 40) + [{"age": None, "city": "Atlantis", "income": None}]
    response = client.post(
        f"/resource/models/{accepted['model_id']}/predict?probabilities=true",
        admin_token,
        json=records,
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Model-Engine"] == engine["name"]
    expected = sklearn_answer(bundle, records_to_frame(records, bundle.schema), probabilities=True)
    got = response.json()
    assert got["predictions"] == expected["predictions"]
    for row, want in zip(got["probabilities"], expected["probabilities"], strict=True):
        assert row == pytest.approx(want, abs=1e-5)


def test_concurrent_requests_on_the_scikit_learn_path_get_their_own_answers(
    client, admin_token, dataset_id, customers, secret
):
    accepted = train(
        client,
        admin_token,
        {
            "dataset_id": dataset_id,
            "target": "plan",
            "features": FEATURES,
            "compile": False,
            "estimator": "LogisticRegression",
            "params": {},
        },
    )
    model_id = accepted["model_id"]
    record = wait_compiled(client, admin_token, model_id)
    assert record["engine"]["name"] == "scikit-learn"
    assert "off for this model" in record["engine"]["reason"]
    bundle = reference(client, admin_token, model_id, secret)
    requests = [[row] for row in rows(customers, 48)] + [rows(customers, 7)]

    def ask(index):
        response = client.post(
            f"/resource/models/{model_id}/predict?probabilities={'true' if index % 2 else 'false'}",
            admin_token,
            json=requests[index],
        )
        assert response.status_code == 200, response.text
        assert response.headers["X-Model-Engine"] == "scikit-learn"
        return response.json()

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, range(len(requests))))
    for index, (answer, records) in enumerate(zip(answers, requests, strict=True)):
        expected = sklearn_answer(
            bundle,
            records_to_frame(records, bundle.schema),
            probabilities=bool(index % 2),
        )
        assert answer["predictions"] == expected["predictions"]
        assert ("probabilities" in answer) == bool(index % 2)
        for row, want in zip(
            answer.get("probabilities", []), expected.get("probabilities", []), strict=True
        ):
            assert row == pytest.approx(want, rel=1e-12)


def test_predictions_read_redis_once_per_worker_until_it_changes(
    client, admin_token, initialised, iris_record, store, stack
):
    """Token user + model version are read once per worker (never the bundle bytes), then
    remembered until Redis says the key changed: then read again, once."""
    for _ in range(10):  # every worker has the model cached
        assert client.post("/resource/predict", admin_token, json=iris_record).status_code == 200

    def counts():
        stats = store.info("commandstats")
        return {
            name: stats.get(f"cmdstat_{name}", {}).get("calls", 0)
            for name in ("get", "hget", "hmget", "mget", "hgetall", "exists")
        }

    before = counts()
    for _ in range(100):
        assert client.post("/resource/predict", admin_token, json=iris_record).status_code == 200
    delta = {name: after - before[name] for name, after in counts().items()}
    # Nothing changed: no read at all (GETs of the Celery sweep may add a few).
    assert delta["hmget"] == delta["hget"] == 0, delta
    assert delta["get"] <= 5, delta
    assert delta["mget"] == delta["hgetall"] == delta["exists"] == 0, delta
    # The admin's record changes (a field nobody reads): every worker reads it again, once.
    store.hset(user_records.user_key("admin"), "touched", "1")
    before = counts()
    for _ in range(20):
        assert client.post("/resource/predict", admin_token, json=iris_record).status_code == 200
    after = counts()
    assert 1 <= after["hmget"] - before["hmget"] <= len(stack.api_worker_pids())


def test_the_default_model_is_compiled(client, admin_token, initialised, iris_record):
    """Its column names ("petal width (cm)") are not valid ONNX input names as they are."""
    response = client.post("/resource/predict", admin_token, json=iris_record)
    assert response.status_code == 200
    assert response.headers["X-Model-Engine"] == "onnxruntime"
