"""The model registry on the real stack: versions, predictions by name, moves under load, splits,
shadows, webhooks, and other users.

Three models of one user, trained once for the module: the first registers
itself (``register_as``), the others are added as versions 2 and 3. Each test
uses aliases of its own on that name, or a name of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.metadata
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.helpers import CallbackReceiver, eventually, train, upload, wait_ready
from tests.integration.test_metrics import api_url, scrape

NAME = "churn"
#: Concurrent connections of the load tests.
CONNECTIONS = 16


@pytest.fixture(scope="module")
def owner(client, admin_token):
    """(user name, token) of the registry's user."""
    name, password = "registrar", "registrar-password"
    made = client.post(
        "/resource/users", admin_token, json={"username": name, "password": password}
    )
    assert made.status_code == 201, made.text
    return name, client.token(name, password)


@pytest.fixture(scope="module")
def rows(customers) -> list[dict]:
    """Prediction records: the customers without their plan (missing values as null)."""
    frame = customers.drop(columns=["plan"]).head(60).astype(object)
    return [
        {key: (None if value != value else value) for key, value in record.items()}
        for record in frame.to_dict("records")
    ]


@pytest.fixture(scope="module")
def released(client, owner, customers):
    """The name with versions 1, 2, 3 (three different models); the data set's bytes."""
    _, token = owner
    data = customers.to_csv(index=False).encode()
    dataset_id = upload(client, token, customers)
    models = []
    for estimator, params, register in (
        ("LogisticRegression", {"C": 1.0}, True),
        ("DecisionTreeClassifier", {"max_depth": 1}, False),
        ("LogisticRegression", {"C": 0.0001}, False),
    ):
        body = {"dataset_id": dataset_id, "target": "plan", "estimator": estimator}
        body["params"] = params
        if register:
            body["register_as"] = NAME
        models.append(train(client, token, body)["model_id"])
    for model_id in models:
        assert wait_ready(client, token, model_id)["status"] == "ready"
    eventually(  # register_as happens in the training task, once the model is ready
        lambda: client.get(f"/resource/registry/{NAME}/versions/1", token).status_code == 200,
        message="register_as did not make version 1",
    )
    for expected, model_id in ((2, models[1]), (3, models[2])):
        added = client.post(
            f"/resource/registry/{NAME}/versions", token, json={"model_id": model_id}
        )
        assert added.status_code == 201, added.text
        assert added.json()["version"] == expected
    return {"models": models, "dataset_id": dataset_id, "csv": data}


def put_alias(client, token, alias: str, body: dict) -> dict:
    answer = client.request("PUT", f"/resource/registry/{NAME}/aliases/{alias}", token, json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def predict(client, token, path: str, body) -> requests.Response:
    answer = client.post(path, token, json=body)
    assert answer.status_code == 200, answer.text
    return answer


def test_versions_are_numbered_immutable_and_carry_their_lineage(client, owner, released):
    _, token = owner
    first = client.get(f"/resource/registry/{NAME}/versions/1", token).json()
    assert first["model_id"] == released["models"][0]
    assert first["registered_by"] == owner[0]
    lineage = first["lineage"]
    assert lineage["dataset_id"] == released["dataset_id"]
    assert lineage["dataset_sha256"] == hashlib.sha256(released["csv"]).hexdigest()
    dataset = client.get(f"/resource/datasets/{released['dataset_id']}", token).json()
    assert dataset["sha256"] == lineage["dataset_sha256"]
    assert lineage["service_version"] == importlib.metadata.version("mlservice")
    assert (lineage["target"], lineage["estimator"], lineage["params"]) == (
        "plan",
        "LogisticRegression",
        {"C": 1.0},
    )
    assert (lineage["trained_by"], lineage["source"]) == (owner[0], "trained")
    model = client.get(f"/resource/models/{released['models'][0]}", token).json()
    assert lineage["metrics"] == model["metrics"]
    assert lineage["trained_at"] == model["finished_at"]
    # Pinned: the model stays; adding it again is a new number, never an old one.
    pinned = client.delete(f"/resource/models/{released['models'][0]}", token)
    assert pinned.status_code == 409
    assert pinned.json()["status"].startswith(
        f"model {released['models'][0]!r} is version 1 of {NAME!r} in the registry"
    )
    record = client.get(f"/resource/registry/{NAME}", token).json()
    assert [v["version"] for v in record["versions"]] == [1, 2, 3]
    assert [v["model_id"] for v in record["versions"]] == released["models"]
    history = client.get(f"/resource/registry/{NAME}/history", token).json()["history"]
    assert [(e["event"], e["version"], e["actor"]) for e in history[:4]] == [
        ("created", None, owner[0]),
        ("version_added", 1, owner[0]),
        ("version_added", 2, owner[0]),
        ("version_added", 3, owner[0]),
    ]


def test_predictions_by_name_answer_as_the_models_own_route_in_every_format(
    client, owner, released, rows
):
    _, token = owner
    put_alias(client, token, "formats", {"version": 2})
    model_id = released["models"][1]
    direct = predict(client, token, f"/resource/models/{model_id}/predict", rows)
    for path in (
        f"/resource/registry/{NAME}@formats/predict",
        f"/resource/registry/{NAME}/versions/2/predict",
    ):
        answer = predict(client, token, path, rows)
        assert answer.json() == direct.json()
        assert answer.headers["X-Registry-Version"] == "2"
        assert answer.headers["X-Model-Id"] == model_id
        assert answer.headers["X-Model-Version"] == direct.headers["X-Model-Version"]
        csv = client.post(
            f"{path}?probabilities=true",
            token,
            data="age,city,income\n30,Lyon,41000\n,,52000.5\n",
            headers={"Content-Type": "text/csv", "Accept": "text/csv"},
        )
        expected = client.post(
            f"/resource/models/{model_id}/predict?probabilities=true",
            token,
            data="age,city,income\n30,Lyon,41000\n,,52000.5\n",
            headers={"Content-Type": "text/csv", "Accept": "text/csv"},
        )
        assert (csv.status_code, csv.headers["Content-Type"]) == (200, "text/csv; charset=utf-8")
        assert csv.text == expected.text
    unknown = client.post(f"/resource/registry/{NAME}@nowhere/predict", token, json=rows[0])
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"status": f"registered model {NAME!r} has no alias 'nowhere'"},
    )


def test_other_users_get_404_and_admins_see_everything(
    client, owner, released, rows, new_user, admin_token
):
    put_alias(client, owner[1], "private", {"version": 1})
    _, _, stranger = new_user()
    missing = {"status": f"no registered model {NAME!r}"}
    for method, path, body in (
        ("POST", f"/resource/registry/{NAME}@private/predict", rows[0]),
        ("POST", f"/resource/registry/{NAME}/versions/1/predict", rows[0]),
        ("GET", f"/resource/registry/{NAME}", None),
        ("GET", f"/resource/registry/{NAME}/history", None),
        ("PUT", f"/resource/registry/{NAME}/aliases/private", {"version": 2}),
    ):
        answer = client.request(method, path, stranger, json=body)
        assert (answer.status_code, answer.json()) == (404, missing), path
    taken = client.post("/resource/registry", stranger, json={"name": NAME})
    assert taken.status_code == 409
    assert client.get(f"/resource/registry/{NAME}", admin_token).status_code == 200
    answer = client.post(f"/resource/registry/{NAME}@private/predict", admin_token, json=rows[0])
    assert answer.status_code == 200 and answer.headers["X-Registry-Version"] == "1"


def test_moving_an_alias_under_load_fails_nothing_and_never_serves_the_old_version(
    stack, client, owner, released, rows
):
    """16 connections predict by alias while it moves 24 times between three versions: every
    request is answered, and a request sent after a PUT answered is served by that PUT's
    version (or by a later PUT's, if one was on its way)."""
    _, token = owner
    path = f"{stack.url}/resource/registry/{NAME}@live/predict"
    put_alias(client, token, "live", {"version": 1})
    puts: list[tuple[float, float, int]] = [(0.0, time.monotonic(), 1)]  # (sent, answered, v)
    answers: list[tuple[float, float, int, str]] = []  # (sent, answered, status, version)
    stop = threading.Event()

    def load(index: int) -> None:
        with requests.Session() as session:
            headers = {"Authorization": f"Bearer {token}"}
            while not stop.is_set():
                sent = time.monotonic()
                answer = session.post(path, json=rows[index % len(rows)], headers=headers)
                served = answer.headers.get("X-Registry-Version", "")
                answers.append((sent, time.monotonic(), answer.status_code, served))

    threads = [threading.Thread(target=load, args=(i,)) for i in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        for move in range(24):
            version = (move + 1) % 3 + 1  # 2, 3, 1, 2, ...
            sent = time.monotonic()
            put_alias(client, token, "live", {"version": version})
            puts.append((sent, time.monotonic(), version))
            time.sleep(0.15)
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert len(answers) > 1000
    assert {status for _, _, status, _ in answers} == {200}
    stale = []
    for sent, answered, _, served in answers:
        last = max(i for i, put in enumerate(puts) if put[1] < sent)
        allowed = {puts[last][2]} | {
            v for put_sent, _, v in puts[last + 1 :] if put_sent < answered
        }
        if int(served) not in allowed:
            stale.append((sent, served, allowed))
    assert stale == []
    assert {served for _, _, _, served in answers} == {"1", "2", "3"}


def test_a_90_10_split_serves_each_version_its_share(stack, client, owner, released, rows):
    _, token = owner
    put_alias(client, token, "canary", {"versions": {"1": 90, "2": 10}})
    before = scrape(api_url(stack))
    count = 2400
    path = f"{stack.url}/resource/registry/{NAME}@canary/predict"
    headers = {"Authorization": f"Bearer {token}"}

    def connection(index: int) -> list[str]:
        served = []
        with requests.Session() as session:
            for number in range(index, count, CONNECTIONS):
                answer = session.post(path, json=rows[number % len(rows)], headers=headers)
                assert answer.status_code == 200, answer.text
                served.append(answer.headers["X-Registry-Version"])
        return served

    with ThreadPoolExecutor(CONNECTIONS) as pool:
        served = [version for part in pool.map(connection, range(CONNECTIONS)) for version in part]
    share = served.count("2") / count
    assert set(served) == {"1", "2"}
    assert abs(share - 0.10) < 0.03, share  # 4.9 standard deviations of a fair draw
    after = scrape(api_url(stack))
    for version in ("1", "2"):
        sample = (
            "mlservice_registry_predictions_total",
            frozenset({"name": NAME, "version": version}.items()),
        )
        assert after[sample] - before.get(sample, 0.0) == served.count(version), version


def test_a_shadow_never_changes_an_answer_and_its_agreement_is_recorded(
    client, owner, released, rows
):
    _, token = owner
    put_alias(client, token, "shadowed", {"version": 1, "shadow": 3})
    served = predict(client, token, f"/resource/registry/{NAME}/versions/1/predict", rows).json()
    shadow = predict(client, token, f"/resource/registry/{NAME}/versions/3/predict", rows).json()
    agreeing = sum(
        a == b for a, b in zip(served["predictions"], shadow["predictions"], strict=True)
    )
    assert 0 < agreeing < len(rows), "the two versions should disagree on some rows"
    for index, row in enumerate(rows):  # one by one: no copy is ever dropped
        answer = predict(client, token, f"/resource/registry/{NAME}@shadowed/predict", row)
        assert answer.json() == {"predictions": [served["predictions"][index]]}
        assert answer.headers["X-Registry-Version"] == "1"

    def recorded():
        counts = client.get(f"/resource/registry/{NAME}/versions/3", token).json()["shadow"]
        assert counts is not None and counts["requests_compared"] == len(rows), counts
        return counts

    counts = eventually(recorded, timeout=60, message="the shadow's comparisons were not counted")
    assert counts == {
        "requests_compared": len(rows),
        "requests_agreed": agreeing,
        "agreement_rate": agreeing / len(rows),
        "rows_compared": len(rows),
        "rows_agreed": agreeing,
        "failed": 0,
        "dropped": 0,
    }
    view = client.get(f"/resource/registry/{NAME}/versions/1", token).json()
    assert view["shadow"] is None and "shadowed" in view["aliases"]


def test_registry_events_reach_the_webhook_signed_and_in_order(client, owner, released):
    _, token = owner
    receiver = CallbackReceiver()
    secret = "registry-webhook-secret"
    name = "churn-hooked"
    try:
        made = client.post(
            "/resource/registry",
            token,
            json={"name": name, "webhook_url": receiver.url, "webhook_secret": secret},
        )
        assert made.status_code == 201, made.text
        model_id = released["models"][1]
        added = client.post(
            f"/resource/registry/{name}/versions", token, json={"model_id": model_id}
        )
        assert added.status_code == 201
        for body in ({"version": 1}, {"versions": {"1": 50}}):
            answer = client.request(
                "PUT", f"/resource/registry/{name}/aliases/prod", token, json=body
            )
            assert answer.status_code == 200
        patched = client.request(
            "PATCH", f"/resource/registry/{name}", token, json={"tags": {"a": "b"}}
        )
        assert patched.status_code == 200
        receiver.wait(4)
        time.sleep(0.5)  # nothing more may come
        events = [json.loads(body) for _, body in receiver.calls]
        assert [(e["event"], e["version"], e["alias"]) for e in events] == [
            ("version_added", 1, None),
            ("alias_set", None, "prod"),
            ("alias_moved", None, "prod"),
            ("tags_changed", None, None),
        ]
        history = client.get(f"/resource/registry/{name}/history", token).json()["history"]
        ids = [entry["id"] for entry in history if entry["event"] != "created"]
        assert [e["history_id"] for e in events] == ids
        for (headers, raw), body in zip(receiver.calls, events, strict=True):
            assert (
                headers["X-MLService-Delivery"]
                == body["delivery_id"]
                == (f"registry:{name}:{body['history_id']}")
            )
            signed = headers["X-MLService-Timestamp"].encode() + b"." + raw
            digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
            assert headers["X-MLService-Signature"] == f"sha256={digest}"
        assert events[2]["before"]["version"] == 1 and events[2]["after"]["versions"] == {"1": 50}
    finally:
        receiver.close()
