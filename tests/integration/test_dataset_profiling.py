"""Uploads over [service] inline_profile_mb (16 MiB): stored by the request (202), profiled
by a Celery worker, ending ``ready`` with the profile or ``failed`` with the reason."""

from pathlib import Path

import pytest

from mlservice.errors import Invalid
from mlservice.store import dataset_files
from mlservice.store.catalog import Catalog
from mlservice.store.records import DatasetRecord
from tests.helpers import eventually, train

#: The stack runs with the default threshold: files above it are profiled by a worker.
INLINE_BYTES = 16 * 1024 * 1024
HEADER = b"id,value,city,label\n"
#: The ragged line a bad file ends with, and what Arrow (so the service) says of it.
RAGGED = b"1,2,3,4,5\n"


def _block(rows: int) -> bytes:
    return "".join(
        f"{i},{i * 0.5},city{i % 7},{'yes' if i % 3 else 'no'}\n" for i in range(rows)
    ).encode()


def _write_large(path: Path, ending: bytes = b"") -> Path:
    """A CSV just over the threshold (identical blocks of 10,000 rows), then ``ending``."""
    block = _block(10_000)
    with path.open("wb") as handle:
        handle.write(HEADER)
        while handle.tell() <= INLINE_BYTES:
            handle.write(block)
        handle.write(ending)
    return path


@pytest.fixture(scope="module")
def large_csv(tmp_path_factory) -> Path:
    return _write_large(tmp_path_factory.mktemp("profiling") / "large.csv")


def _post(client, token: str, path: Path, multipart: bool):
    with path.open("rb") as handle:
        if multipart:
            return client.post(
                "/resource/datasets",
                token,
                files={"file": (path.name, handle, "text/csv")},
                timeout=120,
            )
        return client.post(
            f"/resource/datasets?name={path.name}",
            token,
            data=handle,
            headers={"Content-Type": "text/csv"},
            timeout=120,
        )


def _settled(client, token: str, dataset_id: str) -> dict:
    def done() -> dict:
        record = client.get(f"/resource/datasets/{dataset_id}", token).json()
        assert record["status"] in ("ready", "failed"), record
        return record

    return eventually(done, timeout=120, message=f"data set {dataset_id} still profiling")


@pytest.mark.parametrize("multipart", [False, True], ids=["raw", "multipart"])
def test_a_large_upload_is_accepted_then_profiled_by_a_worker(
    client, admin_token, large_csv, multipart
):
    response = _post(client, admin_token, large_csv, multipart)
    assert response.status_code == 202, response.text
    body = response.json()
    dataset_id, task_id = body["id"], body["task_id"]
    assert response.headers["Location"] == f"/resource/datasets/{dataset_id}"
    assert body["status_url"] == f"/resource/task/status/{task_id}"
    assert body["status"] == "profiling"
    assert body["size_bytes"] == large_csv.stat().st_size
    assert not {"rows", "columns", "delimiter", "formula_cells"} & set(body)

    record = _settled(client, admin_token, dataset_id)
    assert record["status"] == "ready", record
    # Exactly the profile an upload under the threshold gets: the same function made it.
    expected = dataset_files.profiled(large_csv, "csv")
    del expected["string_columns"]  # not shown by the API
    assert {key: record[key] for key in expected} == expected
    blocks = (large_csv.stat().st_size - len(HEADER)) // len(_block(10_000))
    assert record["rows"] == blocks * 10_000
    city = next(column for column in record["columns"] if column["name"] == "city")
    assert city["categories_sample"] == [f"city{i}" for i in range(7)]
    assert record["delimiter"] == "," and "error" not in record

    status = client.get(body["status_url"], admin_token).json()
    assert status["state"] == "SUCCESS" and status["result"]["status"] == "ready", status
    download = client.get(f"/resource/datasets/{dataset_id}/download", admin_token)
    assert download.status_code == 200 and len(download.content) == record["size_bytes"]
    assert client.delete(f"/resource/datasets/{dataset_id}", admin_token).status_code == 204


def test_a_bad_large_file_ends_failed_with_the_inline_message_and_no_file(
    client, admin_token, settings, tmp_path
):
    small = client.post(
        "/resource/datasets",
        admin_token,
        data=HEADER + _block(20) + RAGGED,
        headers={"Content-Type": "text/csv"},
    )
    assert small.status_code == 422, small.text
    assert small.json()["status"] == (
        "ragged rows: row 20 has 5 fields where the header has 4; give every row one value "
        "per column, and quote text that holds the delimiter ','"
    )
    path = _write_large(tmp_path / "ragged.csv", ending=RAGGED)
    rows = (path.stat().st_size - len(HEADER) - len(RAGGED)) // len(_block(10_000)) * 10_000
    # What the request would have answered (422) for this file under the threshold.
    inline_message = (
        f"ragged rows: row {rows} has 5 fields where the header has 4; give every row one "
        "value per column, and quote text that holds the delimiter ','"
    )
    with pytest.raises(Invalid) as refused:
        dataset_files.profile_file(path, "csv")
    assert refused.value.message == inline_message

    response = _post(client, admin_token, path, multipart=False)
    assert response.status_code == 202, response.text
    dataset_id = response.json()["id"]
    record = _settled(client, admin_token, dataset_id)
    assert record["status"] == "failed"
    assert record["error"] == inline_message
    assert not (Path(settings.artifact_dir) / "datasets" / dataset_id).exists()

    status = client.get(response.json()["status_url"], admin_token).json()
    assert status["state"] == "FAILURE", status
    assert status["error"] == inline_message
    download = client.get(f"/resource/datasets/{dataset_id}/download", admin_token)
    assert download.status_code == 409
    assert download.json()["status"] == f"data set {dataset_id!r} failed: {inline_message}"
    training = client.post(
        "/resource/models",
        admin_token,
        json={"dataset_id": dataset_id, "target": "label", "estimator": "LogisticRegression"},
    )
    assert training.status_code == 409, training.text
    assert training.json()["status"] == f"data set {dataset_id!r} failed: {inline_message}"

    assert client.delete(f"/resource/datasets/{dataset_id}", admin_token).status_code == 204
    assert client.get(f"/resource/datasets/{dataset_id}", admin_token).status_code == 404


def test_training_on_a_data_set_still_profiling_is_409(client, admin_token, store):
    """A record left ``profiling`` (written behind the API: a worker's timing is not a test's)."""
    small = client.post(
        "/resource/datasets?name=small.csv",
        admin_token,
        data=HEADER + _block(50),
        headers={"Content-Type": "text/csv"},
    )
    assert small.status_code == 201, small.text
    assert small.json()["status"] == "ready"
    record = small.json() | {"id": Catalog.new_id(), "status": "profiling"}
    for key in ("rows", "columns", "delimiter", "formula_cells", "created_at"):
        record.pop(key)
    Catalog(store, "dataset", DatasetRecord).create(record)
    body = {"dataset_id": record["id"], "target": "label", "estimator": "LogisticRegression"}
    response = client.post("/resource/models", admin_token, json=body)
    assert response.status_code == 409, response.text
    assert response.json()["status"] == (
        f"data set {record['id']!r} is still being profiled; retry when its status is ready"
    )
    shown = client.get(f"/resource/datasets/{record['id']}", admin_token).json()
    assert shown["status"] == "profiling" and "rows" not in shown
    # The same request on the ready data set is accepted.
    train(client, admin_token, body | {"dataset_id": small.json()["id"]})
    assert client.delete(f"/resource/datasets/{record['id']}", admin_token).status_code == 204
