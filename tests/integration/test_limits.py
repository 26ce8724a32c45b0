"""Bounded work: body size, JSON depth and training parameters, each refusal naming its setting.

The stack runs with the default [limits] (max_json_mb 32, max_json_depth 32,
max_n_estimators 2000, max_iter 100000).
"""

import json
import time

from tests.helpers import upload


def test_deep_json_is_422_naming_the_limit(client, admin_token, initialised):
    expected = {
        "status": "the JSON body nests arrays and objects more than 32 deep "
        "([limits] max_json_depth)"
    }
    for body in ("[" * 100_000, "[" * 33 + "]" * 33, json.dumps({"a": [[[[[[[[[]]]]]]]]]})):
        response = client.post(
            "/resource/predict",
            admin_token,
            data=body,
            headers={"Content-Type": "application/json"},
        )
        if body.startswith('{"a"'):
            assert response.status_code == 422 and "lacks column" in response.text  # shallow
        else:
            assert (response.status_code, response.json()) == (422, expected), body[:40]


def test_a_json_body_over_the_cap_is_refused_from_content_length(client, admin_token, initialised):
    body = b'{"x": "' + b"a" * (33 * 1024 * 1024) + b'"}'
    started = time.monotonic()
    response = client.post(
        "/resource/predict",
        admin_token,
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == {
        "status": "the JSON body is 33.0 MiB; at most 32 MiB ([limits] max_json_mb): "
        "send fewer records per request"
    }
    assert time.monotonic() - started < 10


def test_a_chunked_json_body_over_the_cap_is_refused(client, admin_token, initialised):
    """NGINX reads a chunked body whole and passes it on with its length: refused from that."""

    def chunks():
        yield b'{"x": "'
        for _ in range(33):
            yield b"a" * (1024 * 1024)
        yield b'"}'

    response = client.post(
        "/resource/predict",
        admin_token,
        data=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == {
        "status": "the JSON body is 33.0 MiB; at most 32 MiB ([limits] max_json_mb): "
        "send fewer records per request"
    }


def test_training_parameters_are_bounded(client, admin_token, customers):
    dataset_id = upload(client, admin_token, customers)
    cases = {
        ("RandomForestClassifier", "n_estimators", 100_000_000): (
            "RandomForestClassifier n_estimators=100000000 is more than 2000 "
            "([limits] max_n_estimators)"
        ),
        ("LogisticRegression", "max_iter", 10_000_000): (
            "LogisticRegression max_iter=10000000 is more than 100000 ([limits] max_iter)"
        ),
    }
    for (estimator, param, value), message in cases.items():
        body = {
            "dataset_id": dataset_id,
            "target": "plan",
            "estimator": estimator,
            "params": {param: value},
        }
        response = client.post("/resource/models", admin_token, json=body)
        assert (response.status_code, response.json()) == (422, {"status": message})
    body = {
        "dataset_id": dataset_id,
        "target": "plan",
        "estimator": "RandomForestClassifier",
        "params": {"n_jobs": 1000},
    }
    response = client.post("/resource/models", admin_token, json=body)
    assert response.status_code == 422
    assert "n_jobs=1000 asks for more than the" in response.json()["status"]
    client.delete(f"/resource/datasets/{dataset_id}", admin_token)
