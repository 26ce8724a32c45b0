"""POST /resource/models/{id}/predictions: a stored data set scored by a Celery job.

The output data set, downloaded, must hold exactly what the online predict
route answers for the same rows.
"""

import io

import numpy as np
import pandas as pd
import pytest

from mlservice.store.catalog import Catalog
from mlservice.store.records import DatasetRecord
from tests.conftest import SCORING_CHUNK_ROWS
from tests.data import make_customers
from tests.helpers import eventually, train, upload, wait_ready


@pytest.fixture(scope="module")
def owner(client, admin_token) -> str:
    """A plain user who owns the model and the data sets (a token)."""
    name, password = "scoring-owner", "scoring-owner-password"
    response = client.post(
        "/resource/users", admin_token, json={"username": name, "password": password}
    )
    assert response.status_code == 201, response.text
    return client.token(name, password)


@pytest.fixture(scope="module")
def model(client, owner, customers) -> dict:
    """A forest on the customers, served by scikit-learn (so probabilities compare exactly)."""
    dataset_id = upload(client, owner, customers)
    accepted = train(
        client,
        owner,
        {
            "dataset_id": dataset_id,
            "target": "plan",
            "estimator": "RandomForestClassifier",
            "params": {"n_estimators": 30, "max_depth": 6, "random_state": 0},
            "compile": False,
        },
    )
    record = wait_ready(client, owner, accepted["model_id"])
    assert record["status"] == "ready", record
    return {"id": record["id"], "dataset_id": dataset_id}


@pytest.fixture(scope="module")
def big(client, owner) -> tuple[str, int]:
    """A data set of many chunks: (its id, its rows)."""
    rows = 200 * SCORING_CHUNK_ROWS
    return upload(client, owner, make_customers.customers(rows=rows, seed=7)), rows


def start(client, token, model_id: str, body: dict, expect: int = 202) -> dict:
    """POST the job; its answer (with ``location``)."""
    response = client.post(f"/resource/models/{model_id}/predictions", token, json=body)
    assert response.status_code == expect, response.text
    return response.json() | {"location": response.headers.get("Location")}


def finish(client, token, location: str, seen: list | None = None) -> dict:
    """The task's status once it is done; every status read on the way goes to ``seen``."""

    def done() -> dict | None:
        status = client.get(location, token).json()
        if seen is not None:
            seen.append(status)
        return status if status["done"] else None

    return eventually(done, timeout=120, interval=0.05, message=f"{location} not done")


def download(client, token, dataset_id: str, file_format: str) -> pd.DataFrame:
    response = client.get(f"/resource/datasets/{dataset_id}/download", token)
    assert response.status_code == 200, response.text
    data = io.BytesIO(response.content)
    return pd.read_parquet(data) if file_format == "parquet" else pd.read_csv(data)


def online(client, token, model_id: str, frame: pd.DataFrame) -> dict:
    """What POST /resource/models/{id}/predict answers for the frame's rows."""
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    response = client.post(
        f"/resource/models/{model_id}/predict?probabilities=true",
        token,
        json={"instances": records},
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_scored_data_set_holds_the_predict_routes_answers(
    client, owner, new_user, model, customers, file_format
):
    accepted = start(
        client,
        owner,
        model["id"],
        {
            "dataset_id": model["dataset_id"],
            "format": file_format,
            "keep_columns": ["city", "age"],
            "probabilities": True,
            "name": f"scored-{file_format}",
        },
    )
    assert accepted["model_id"] == model["id"]
    assert accepted["location"] == accepted["status_url"]
    assert accepted["status_url"] == f"/resource/task/status/{accepted['task_id']}"
    status = finish(client, owner, accepted["location"])
    assert status["state"] == "SUCCESS", status
    result = status["result"]
    columns = ["city", "age", "prediction", "probability_basic", "probability_premium"]
    assert result["model_id"] == model["id"]
    assert result["source_dataset_id"] == model["dataset_id"]
    assert (result["rows"], result["format"], result["columns"]) == (400, file_format, columns)
    # Another user does not see the job.
    _, _, stranger = new_user()
    assert client.get(accepted["location"], stranger).status_code == 404

    record = client.get(f"/resource/datasets/{result['dataset_id']}", owner).json()
    assert record["name"] == f"scored-{file_format}" and record["rows"] == 400
    listed = client.get("/resource/datasets?per_page=100", owner).json()["datasets"]
    assert result["dataset_id"] in {item["id"] for item in listed}

    scored = download(client, owner, result["dataset_id"], file_format)
    assert list(scored.columns) == columns
    expected = online(client, owner, model["id"], customers[["age", "city", "income"]])
    assert scored["prediction"].tolist() == expected["predictions"]
    for label in ("basic", "premium"):
        wanted = np.array([row[label] for row in expected["probabilities"]])
        np.testing.assert_allclose(scored[f"probability_{label}"], wanted, rtol=0, atol=1e-9)
    missing = "<missing>"
    assert scored["city"].fillna(missing).tolist() == customers["city"].fillna(missing).tolist()
    np.testing.assert_array_equal(scored["age"].to_numpy(), customers["age"].to_numpy())

    deleted = client.delete(f"/resource/datasets/{result['dataset_id']}", owner)
    assert deleted.status_code == 204


def test_progress_is_reported_in_rows(client, owner, model, big):
    dataset_id, rows = big
    accepted = start(client, owner, model["id"], {"dataset_id": dataset_id})
    seen: list[dict] = []
    status = finish(client, owner, accepted["location"], seen)
    assert status["state"] == "SUCCESS", status
    assert status["result"]["rows"] == rows
    assert status["result"]["columns"] == ["prediction"]
    running = [s for s in seen if s["state"] == "PROGRESS" and 0 < s["rows_done"] < rows]
    assert running, f"no progress seen among {len(seen)} reads"
    for snapshot in running:
        assert snapshot["rows_total"] == rows
        assert snapshot["rows_done"] % SCORING_CHUNK_ROWS == 0
        assert snapshot["progress"] == snapshot["rows_done"] / rows
        assert snapshot["status"] == f"scored {snapshot['rows_done']} of {rows} rows"
    client.delete(f"/resource/datasets/{status['result']['dataset_id']}", owner)


def test_a_data_set_deleted_mid_way_fails_the_job_and_leaves_nothing(client, owner, model, stack):
    dataset_id = upload(client, owner, make_customers.customers(rows=20_000, seed=3))
    files = stack.run_dir / "artifacts" / "datasets"
    before = {path.name for path in files.iterdir()}
    listed_before = client.get("/resource/datasets?per_page=100", owner).json()["total"]
    accepted = start(client, owner, model["id"], {"dataset_id": dataset_id, "format": "csv"})

    def running() -> bool:
        status = client.get(accepted["location"], owner).json()
        assert not status["done"], f"the job ended before the data set was deleted: {status}"
        return status["state"] == "PROGRESS" and status["rows_done"] > 0

    eventually(running, timeout=60, interval=0.05, retry_on=())
    assert client.delete(f"/resource/datasets/{dataset_id}", owner).status_code == 204
    status = finish(client, owner, accepted["location"])
    assert status["state"] == "FAILURE", status
    assert status["error"] == (
        f"data set '{dataset_id}' was deleted while model '{model['id']}' "
        "was scoring it; no data set was made"
    )
    assert {path.name for path in files.iterdir()} == before - {dataset_id}
    listed_after = client.get("/resource/datasets?per_page=100", owner).json()["total"]
    assert listed_after == listed_before - 1


def test_another_users_model_or_data_set_is_404(client, owner, new_user, model, customers):
    _, _, stranger = new_user()
    theirs = upload(client, stranger, customers)
    refused = start(client, stranger, model["id"], {"dataset_id": theirs}, expect=404)
    assert refused["status"] == f"no model '{model['id']}'"
    refused = start(client, owner, model["id"], {"dataset_id": theirs}, expect=404)
    assert refused["status"] == f"no dataset '{theirs}'"


def test_columns_the_data_set_lacks_are_422(client, owner, model, customers):
    no_city = upload(client, owner, customers.drop(columns=["city"]))
    refused = start(client, owner, model["id"], {"dataset_id": no_city}, expect=422)
    assert "lacks the model's input column(s) 'city'" in refused["status"]
    unknown = {"dataset_id": model["dataset_id"], "keep_columns": ["colour", "age"]}
    refused = start(client, owner, model["id"], unknown, expect=422)
    assert refused["status"].startswith("keep_columns 'colour' are not columns of data set")
    text_age = upload(client, owner, customers.assign(age="old"))
    refused = start(client, owner, model["id"], {"dataset_id": text_age}, expect=422)
    assert refused["status"] == (
        f"column 'age' of data set '{text_age}' is string; the model expects numbers"
    )


def test_a_model_that_is_not_ready_is_409(client, owner, customers):
    few = upload(client, owner, customers.head(12))
    failing = train(
        client,
        owner,
        {"dataset_id": few, "target": "plan", "estimator": "LogisticRegression", "cv": 20},
    )
    assert wait_ready(client, owner, failing["model_id"])["status"] == "failed"
    refused = start(client, owner, failing["model_id"], {"dataset_id": few}, expect=409)
    assert refused["status"] == f"model '{failing['model_id']}' is failed, not ready"


def test_a_data_set_still_profiling_is_409(client, admin_token, model, customers, store):
    """A record left ``profiling`` (written behind the API, as a large upload leaves it)."""
    ready = upload(client, admin_token, customers.head(20))
    record = client.get(f"/resource/datasets/{ready}", admin_token).json()
    record |= {"id": Catalog.new_id(), "status": "profiling"}
    for key in ("rows", "columns", "delimiter", "formula_cells", "created_at"):
        record.pop(key, None)
    Catalog(store, "dataset", DatasetRecord).create(record)
    refused = start(client, admin_token, model["id"], {"dataset_id": record["id"]}, expect=409)
    assert refused["status"] == (
        f"data set {record['id']!r} is still being profiled; retry when its status is ready"
    )
    assert client.delete(f"/resource/datasets/{record['id']}", admin_token).status_code == 204


@pytest.mark.parametrize(
    "body, words",
    [
        ({"format": "xlsx"}, "'format' must be one of parquet, csv"),
        ({"keep_columns": "age"}, "'keep_columns' must be a list of column names"),
        ({"probabilities": "yes"}, "'probabilities' must be true or false"),
        ({"rows": 3}, "unknown field(s) 'rows'"),
    ],
)
def test_malformed_bodies_are_400(client, owner, model, body, words):
    refused = start(client, owner, model["id"], {"dataset_id": model["dataset_id"]} | body, 400)
    assert words in refused["status"]
