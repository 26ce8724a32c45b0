"""/resource/datasets: uploads (multipart and raw), profile, download, ownership, bad files."""

import io
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import eventually, train, wait_ready


@pytest.fixture(scope="module")
def mixed_frame() -> pd.DataFrame:
    """Numbers, text, missing values in both."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, size=200).astype(float),
            "income": rng.normal(50_000, 10_000, size=200),
            "city": rng.choice(["Paris", "Lyon", "Nice"], size=200),
            "plan": rng.choice(["basic", "premium"], size=200),
        }
    )
    frame.loc[::9, "income"] = np.nan
    frame.loc[::13, "city"] = None
    return frame


def upload_csv(client, token, data: bytes, name="mixed.csv"):
    return client.post(
        "/resource/datasets", token, files={"file": (name, data, "text/csv")}, data={"name": name}
    )


def test_multipart_csv_gives_profile(client, admin_token, mixed_frame):
    data = mixed_frame.to_csv(index=False).encode()
    response = upload_csv(client, admin_token, data)
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == f"/resource/datasets/{body['id']}"
    assert body["rows"] == 200 and body["size_bytes"] == len(data)
    columns = {column["name"]: column for column in body["columns"]}
    assert columns["income"]["dtype"] == "float"
    assert columns["income"]["missing"] == int(mixed_frame["income"].isna().sum())
    assert columns["city"]["dtype"] == "string"
    assert columns["city"]["missing"] == int(mixed_frame["city"].isna().sum())
    assert columns["city"]["distinct"] == 3
    assert columns["city"]["categories_sample"] == ["Lyon", "Nice", "Paris"]
    assert "categories_sample" not in columns["age"]
    assert body["delimiter"] == ","


def test_raw_parquet_body(client, admin_token, mixed_frame):
    buffer = io.BytesIO()
    mixed_frame.to_parquet(buffer)
    response = client.post(
        "/resource/datasets?name=table.parquet",
        admin_token,
        data=buffer.getvalue(),
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["format"] == "parquet" and response.json()["rows"] == 200
    assert response.json()["delimiter"] is None


@pytest.fixture(scope="module")
def small_table() -> pd.DataFrame:
    """60 rows: an integer, a float, a string with a separator-like character, a label."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=60).round(3)
    return pd.DataFrame(
        {
            "id": np.arange(60),
            "x": x,
            "city": rng.choice(["Saint-Étienne", "Paris, FR", "Lyon"], size=60),
            "label": np.where(x > 0, "up", "down"),
        }
    )


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolon_and_tab_csv_are_read_as_columns(client, admin_token, small_table, sep):
    data = small_table.to_csv(index=False, sep=sep).encode()
    response = upload_csv(client, admin_token, data, name="table.csv")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["delimiter"] == sep and body["rows"] == 60
    assert [(c["name"], c["dtype"]) for c in body["columns"]] == [
        ("id", "integer"),
        ("x", "float"),
        ("city", "string"),
        ("label", "string"),
    ]
    columns = {column["name"]: column for column in body["columns"]}
    assert columns["city"]["categories_sample"] == ["Lyon", "Paris, FR", "Saint-Étienne"]
    assert columns["label"]["categories_sample"] == ["down", "up"]
    assert client.get(f"/resource/datasets/{body['id']}", admin_token).json() == body


def test_a_model_trains_on_a_semicolon_csv(client, admin_token, small_table):
    data = small_table.to_csv(index=False, sep=";").encode()
    dataset_id = upload_csv(client, admin_token, data, name="semicolons.csv").json()["id"]
    accepted = train(
        client,
        admin_token,
        {
            "dataset_id": dataset_id,
            "target": "label",
            "features": ["x", "city"],
            "estimator": "LogisticRegression",
        },
    )
    record = wait_ready(client, admin_token, accepted["model_id"])
    assert record["status"] == "ready", record
    assert record["classes"] == ["down", "up"]
    assert [column["name"] for column in record["input_schema"]] == ["x", "city"]
    assert record["metrics"]["train_rows"] + record["metrics"]["test_rows"] == 60
    response = client.post(
        f"/resource/models/{accepted['model_id']}/predict",
        admin_token,
        json=[{"x": 2.5, "city": "Paris, FR"}, {"x": -2.5, "city": "Lyon"}],
    )
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == ["up", "down"]


def test_download_returns_the_uploaded_bytes(client, admin_token, mixed_frame):
    data = mixed_frame.to_csv(index=False).encode()
    dataset_id = upload_csv(client, admin_token, data).json()["id"]
    response = client.get(f"/resource/datasets/{dataset_id}/download", admin_token)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]


def test_internal_artifact_location_is_not_public(client, admin_token, mixed_frame):
    dataset_id = upload_csv(client, admin_token, mixed_frame.to_csv(index=False).encode()).json()[
        "id"
    ]
    response = client.get(f"/_protected/artifacts/datasets/{dataset_id}/data.csv")
    assert response.status_code == 404


def test_list_get_delete(client, admin_token, new_user, mixed_frame):
    _, _, token = new_user()
    dataset_id = upload_csv(client, token, mixed_frame.to_csv(index=False).encode()).json()["id"]
    listed = client.get("/resource/datasets", token).json()
    assert [d["id"] for d in listed["datasets"]] == [dataset_id] and listed["total"] == 1
    assert client.get(f"/resource/datasets/{dataset_id}", token).json()["rows"] == 200
    assert dataset_id in [
        d["id"]
        for d in client.get("/resource/datasets?per_page=500", admin_token).json()["datasets"]
    ]
    assert client.delete(f"/resource/datasets/{dataset_id}", token).status_code == 204
    assert client.get(f"/resource/datasets/{dataset_id}", token).status_code == 404
    assert client.get("/resource/datasets", token).json()["total"] == 0


def test_other_users_data_set_is_404(client, new_user, mixed_frame):
    _, _, owner = new_user()
    _, _, other = new_user()
    dataset_id = upload_csv(client, owner, mixed_frame.to_csv(index=False).encode()).json()["id"]
    for call in (
        lambda: client.get(f"/resource/datasets/{dataset_id}", other),
        lambda: client.get(f"/resource/datasets/{dataset_id}/download", other),
        lambda: client.delete(f"/resource/datasets/{dataset_id}", other),
    ):
        assert call().status_code == 404
    assert client.get("/resource/datasets", other).json()["total"] == 0
    assert client.get(f"/resource/datasets/{dataset_id}", owner).status_code == 200


def _artifact_files(settings) -> set:
    """Every stored file but the models' (other tests' workers write reports and compiled
    bundles meanwhile): data sets and the incoming uploads."""
    root = Path(settings.artifact_dir)
    return {p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != "models"}


@pytest.mark.parametrize(
    "data, content_type, status, words",
    [
        (b"", "text/csv", 400, ["empty"]),
        (b"a,b\n1,2\n3,4,5\n", "text/csv", 422, ["ragged"]),
        (b"a,b\n1,\xff\xfe\n", "text/csv", 422, ["UTF-8"]),
        (b"a,b\n", "text/csv", 422, ["no rows"]),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "text/csv", 415, ["not CSV"]),
        (b"not parquet at all", "application/vnd.apache.parquet", 415, ["Parquet"]),
        (b"{}", "application/json", 415, ["text/csv"]),
    ],
)
def test_bad_files_are_refused_and_leave_nothing(
    client, admin_token, settings, store, data, content_type, status, words
):
    files_before = _artifact_files(settings)
    count_before = store.zcard("mlservice:datasets")
    response = client.post(
        "/resource/datasets", admin_token, data=data, headers={"Content-Type": content_type}
    )
    assert response.status_code == status, response.text
    for word in words:
        assert word in response.json()["status"]
    assert _artifact_files(settings) == files_before
    assert store.zcard("mlservice:datasets") == count_before


def test_multipart_without_file_field_is_400(client, admin_token):
    response = client.post("/resource/datasets", admin_token, files={"other": ("a.csv", b"a\n1\n")})
    assert response.status_code == 400
    assert "'file'" in response.json()["status"]


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_large_upload_streams_without_growing_api_memory(stack, client, admin_token, tmp_path):
    """A 256 MB CSV through NGINX: the API workers' peak RSS barely moves (a worker profiles it)."""
    path = tmp_path / "big.csv"
    block = "".join(
        f"{i},{i * 0.5},city{i % 50},{'yes' if i % 3 else 'no'}\n" for i in range(100_000)
    ).encode()
    with path.open("wb") as handle:
        handle.write(b"id,value,city,label\n")
        while handle.tell() < 256 * 1024 * 1024:
            handle.write(block)
    size = path.stat().st_size
    peaks_before = {pid: _peak_rss_kb(pid) for pid in stack.api_worker_pids()}
    started = time.monotonic()
    with path.open("rb") as handle:
        response = client.post(
            "/resource/datasets?name=big.csv",
            admin_token,
            data=handle,
            headers={"Content-Type": "text/csv"},
            timeout=600,
        )
    elapsed = time.monotonic() - started
    assert response.status_code == 202, response.text
    assert response.json()["size_bytes"] == size

    def profiled() -> dict:
        record = client.get(response.headers["Location"], admin_token).json()
        assert record["status"] == "ready", record
        return record

    body = eventually(profiled, timeout=300, message="the 256 MB data set was not profiled")
    assert body["rows"] == (size - len(b"id,value,city,label\n")) // len(block) * 100_000
    growth_mb = max(_peak_rss_kb(pid) - before for pid, before in peaks_before.items()) / 1024
    print(
        f"\n256 MB upload: {size / elapsed / 1e6:.0f} MB/s, API worker peak RSS growth "
        f"{growth_mb:.1f} MB"
    )
    assert growth_mb < 128, f"an API worker's peak RSS grew by {growth_mb:.0f} MB"
    client.delete(f"/resource/datasets/{body['id']}", admin_token)
    os.unlink(path)
