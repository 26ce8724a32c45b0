"""The Python client (src/client) against the real stack: the journey, errors, tokens, memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jwt
import pandas as pd
import pytest
import requests

from mlservice import security
from mlservice_client import (
    Client,
    Invalid,
    NotFound,
    ProfilingFailed,
    TrainingFailed,
    Unauthorized,
)
from tests.helpers import write_over_limit

#: The customers' input columns (the target is ``plan``).
FEATURES = ["age", "city", "income"]


@pytest.fixture
def user_client(stack, new_user):
    """A client that logs in as a fresh user with a password, and the user's name."""
    name, password, _ = new_user()
    with Client(stack.url, username=name, password=password) as client:
        yield client, name


def test_the_whole_journey(stack, user_client, customers, tmp_path):
    """Log in, init, upload, train (waiting), predict three ways, bundle down and up, delete."""
    client, name = user_client
    token = client.login()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    init = client.init(wait=True, timeout=300)
    assert init["state"] == "SUCCESS" and init["result"]["model_id"] == "default"

    csv_path = tmp_path / "customers.csv"
    customers.to_csv(csv_path, index=False)
    dataset = client.upload_dataset(csv_path)
    assert (dataset["name"], dataset["rows"], dataset["owner"]) == ("customers.csv", 400, name)
    assert [c["name"] for c in dataset["columns"]] == ["age", "city", "income", "plan"]
    assert client.dataset(dataset["id"]) == dataset
    assert [d["id"] for d in client.datasets()["datasets"]] == [dataset["id"]]

    seen = []
    model = client.train(
        dataset["id"],
        "plan",
        "RandomForestClassifier",
        {"n_estimators": 20, "max_depth": 5, "random_state": 0},
        cv=3,
        wait=True,
        timeout=300,
        on_status=seen.append,
    )
    assert model["status"] == "ready"
    assert seen[-1]["state"] == "SUCCESS" and seen[-1]["done"] is True
    assert all(0.0 <= s["progress"] <= 1.0 for s in seen)
    assert set(model["metrics"]) >= {"accuracy", "confusion_matrix", "cv", "train_rows"}
    assert model["metrics"]["cv"]["folds"] == 3

    records = [
        {"age": 70, "city": "Paris", "income": 72000},
        {"age": None, "city": "Atlantis", "income": 21000},
    ]
    by_records = client.predict(records, model=model["id"], probabilities=True)
    assert len(by_records["predictions"]) == 2
    assert set(by_records["predictions"]) <= set(model["classes"])
    assert [sorted(p) for p in by_records["probabilities"]] == [sorted(model["classes"])] * 2

    rows = customers[FEATURES].head(120)
    by_frame = client.predict(rows, model=model["id"])
    rows.to_csv(tmp_path / "rows.csv", index=False)
    by_file = client.predict(tmp_path / "rows.csv", model=model["id"], batch_size=50)
    as_records = json.loads(rows.to_json(orient="records"))
    by_json = client.predict(as_records, model=model["id"], batch_size=7)
    assert len(by_frame["predictions"]) == 120
    assert by_file == by_frame == by_json

    bundle = tmp_path / "plans.mlbundle"
    written = client.download_model(model["id"], bundle)
    assert written == bundle.stat().st_size == model["size_bytes"]
    assert bundle.read_bytes()[:8] == b"MLSBNDL1"
    uploaded = client.upload_model(bundle, name="plans (copy)")
    assert uploaded["id"] != model["id"]
    assert (uploaded["name"], uploaded["status"], uploaded["source"]) == (
        "plans (copy)",
        "ready",
        "upload",
    )
    assert client.predict(rows, model=uploaded["id"]) == by_frame

    copy = tmp_path / "copy.csv"
    assert client.download_dataset(dataset["id"], copy) == dataset["size_bytes"]
    assert copy.read_bytes() == csv_path.read_bytes()

    for model_id in (model["id"], uploaded["id"]):
        client.delete_model(model_id)
        with pytest.raises(NotFound):
            client.model(model_id)
    client.delete_dataset(dataset["id"])
    assert client.datasets()["total"] == 0


def test_default_model_predicts_a_csv_file(stack, user_client, initialised, tmp_path):
    """``model="default"``: CSV cells that read as numbers are sent as numbers."""
    client, _ = user_client
    path = tmp_path / "iris.csv"
    path.write_text(
        "sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n"
        "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"
    )
    assert client.predict(path) == {"predictions": ["setosa", "virginica"]}


def test_errors_are_typed_with_the_services_message(stack, user_client, customers, tmp_path):
    client, _ = user_client
    with pytest.raises(Unauthorized) as wrong:
        Client(stack.url, username="nobody-here", password="not-a-password").login()
    assert (wrong.value.status, wrong.value.message) == (401, "wrong user name or password")

    missing = "0" * 32
    with pytest.raises(NotFound) as not_found:
        client.dataset(missing)
    assert not_found.value.status == 404
    assert not_found.value.message == f"no dataset {missing!r}"

    customers.to_csv(tmp_path / "c.csv", index=False)
    dataset = client.upload_dataset(tmp_path / "c.csv")
    with pytest.raises(Invalid) as invalid:
        client.train(dataset["id"], "plan", "NoSuchForest")
    assert invalid.value.status == 422
    assert "NoSuchForest" in invalid.value.message
    assert str(invalid.value) == f"{invalid.value.message} (HTTP 422)"


def test_a_failed_training_raises_training_failed(stack, user_client, customers, tmp_path):
    client, _ = user_client
    path = tmp_path / "small.csv"
    customers.head(30).to_csv(path, index=False)
    dataset = client.upload_dataset(path)
    with pytest.raises(TrainingFailed) as failed:
        client.train(
            dataset["id"], "plan", "LogisticRegression", features=["age", "city"], cv=20, wait=True
        )
    assert failed.value.model is not None and failed.value.model["status"] == "failed"
    assert failed.value.message == f"training failed: {failed.value.model['error']}"
    assert "n_splits" in failed.value.message


def test_an_expired_token_is_renewed_with_the_credentials(stack, store, settings, new_user):
    """Given an expired token and credentials, the client logs in again before sending it."""
    name, password, _ = new_user()
    secret = security.service_secret(store, settings.security.secret_key)
    now = int(time.time())
    expired = jwt.encode(
        {"sub": name, "role": "user", "iat": now - 120, "exp": now - 60, "jti": "x"},
        secret,
        algorithm="HS256",
    )
    with pytest.raises(Unauthorized) as refused:
        Client(stack.url, token=expired).datasets()
    assert "expired" in refused.value.message
    client = Client(stack.url, token=expired, username=name, password=password)
    assert client.datasets()["total"] == 0
    assert client.token != expired


def test_a_revoked_token_is_renewed_after_its_401(stack, client, admin_token, new_user):
    """A token the client thinks valid comes back 401 (role changed): it logs in once more."""
    name, password, _ = new_user()
    api = Client(stack.url, username=name, password=password)
    api.datasets()
    before = api.token
    changed = client.request(
        "PATCH", f"/resource/users/{name}", admin_token, json={"role": "admin"}
    )
    assert changed.status_code == 200, changed.text
    assert [u["username"] for u in api.users()].count(name) == 1  # an admin route: new token
    assert api.token != before


def test_short_lived_tokens_are_renewed_when_they_expire(extra_api, new_user, tmp_path):
    """Against an API whose tokens live 2 s, the client keeps working past their expiry."""
    url = extra_api(
        "[auth_info]\nexpiry = 2\nexpiry_time_unit = seconds\n", tmp_path / "config.properties"
    )
    name, password, _ = new_user()
    api = Client(url, username=name, password=password)
    assert api.datasets()["total"] == 0
    first = api.token
    time.sleep(2.5)  # the first token has expired
    assert (
        requests.get(
            f"{url}/resource/datasets", headers={"Authorization": f"Bearer {first}"}, timeout=10
        ).status_code
        == 401
    )
    assert api.datasets()["total"] == 0
    assert api.token != first


#: Run in a child process: upload a file with the client and report its peak RSS growth.
UPLOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from mlservice_client import Client

    def peak_kb():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    url, name, password, path = sys.argv[1:5]
    client = Client(url, username=name, password=password)
    client.datasets()  # connections, token and imports are warm before measuring
    before = peak_kb()
    record = client.upload_dataset(path, wait=False)  # the upload only, not the profiling
    print(json.dumps({"growth_kb": peak_kb() - before, "record": record}))
    """
)


def test_a_large_upload_streams_with_flat_client_memory(stack, new_user, tmp_path):
    """A ~200 MB CSV goes up through NGINX while the client's peak RSS grows < 64 MB."""
    name, password, _ = new_user()
    path = tmp_path / "big.csv"
    block = "".join(
        f"{i},{i * 0.5},city{i % 50},{'yes' if i % 3 else 'no'}\n" for i in range(100_000)
    )
    with path.open("wb") as handle:
        handle.write(b"id,value,city,label\n")
        while handle.tell() < 200 * 1024 * 1024:
            handle.write(block.encode())
    done = subprocess.run(
        [sys.executable, "-c", UPLOAD_SCRIPT, stack.url, name, password, str(path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    assert measured["record"]["size_bytes"] == path.stat().st_size
    growth_mb = measured["growth_kb"] / 1024
    print(f"\n200 MB upload with the client: peak RSS growth {growth_mb:.1f} MB")
    assert growth_mb < 64, f"the client's peak RSS grew by {growth_mb:.0f} MB"
    path.unlink()


def test_a_dataframe_needs_no_file(stack, user_client, initialised):
    """Records from a DataFrame with a missing value: NaN is sent as null, not as NaN."""
    client, _ = user_client
    frame = pd.DataFrame(
        {
            "sepal length (cm)": [5.1, 6.7],
            "sepal width (cm)": [3.5, float("nan")],
            "petal length (cm)": [1.4, 5.2],
            "petal width (cm)": [0.2, 2.3],
        }
    )
    answer = client.predict(frame)
    assert answer["predictions"][0] == "setosa" and len(answer["predictions"]) == 2


def test_upload_reports_its_progress_to_the_end(stack, user_client, customers, tmp_path):
    client, _ = user_client
    path = tmp_path / "c.csv"
    customers.to_csv(path, index=False)
    calls: list[tuple[int, int | None]] = []
    record = client.upload_dataset(
        path, name="with-progress.csv", progress=lambda n, t: calls.append((n, t))
    )
    size = Path(path).stat().st_size
    assert sum(n for n, _ in calls) == size == record["size_bytes"]
    assert {t for _, t in calls} == {size}


def test_a_large_upload_is_waited_for_until_ready(stack, user_client, settings, tmp_path):
    """Over inline_profile_mb the service answers ``profiling``; the client returns the profile."""
    client, name = user_client
    path = tmp_path / "large.csv"
    rows = write_over_limit(path, settings.service.inline_profile_bytes)
    seen: list[str] = []
    record = client.upload_dataset(path, on_status=lambda r: seen.append(r["status"]))
    assert (record["status"], record["rows"], record["owner"]) == ("ready", rows, name)
    assert [c["name"] for c in record["columns"]] == ["id", "value", "city", "label"]
    assert seen and seen[-1] == "ready" and set(seen) <= {"profiling", "ready"}
    assert client.dataset(record["id"]) == record

    accepted = client.upload_dataset(path, name="later.csv", wait=False)
    assert (accepted["name"], accepted["status"]) == ("later.csv", "profiling")
    assert not {"rows", "columns"} & set(accepted)
    assert client.wait_dataset(accepted["id"])["rows"] == rows


def test_a_large_upload_that_fails_profiling_raises_with_the_record(
    stack, user_client, settings, tmp_path
):
    client, _ = user_client
    path = tmp_path / "ragged.csv"
    rows = write_over_limit(path, settings.service.inline_profile_bytes, "1,2,3,4,5\n")
    with pytest.raises(ProfilingFailed) as failed:
        client.upload_dataset(path)
    error = (
        f"ragged rows: row {rows} has 5 fields where the header has 4; give every row one "
        "value per column, and quote text that holds the delimiter ','"
    )
    record = failed.value.dataset
    assert record is not None
    assert (record["status"], record["error"]) == ("failed", error)
    assert failed.value.message == (
        f"data set {record['id']!r} (ragged.csv) failed profiling: {error}"
    )
    assert client.dataset(record["id"]) == record  # kept until deleted
