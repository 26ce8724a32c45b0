"""Watching a model on the real stack: drift against the training profile, the prediction
log (one row per predicted row, exported as a data set that trains) and the drift gauges.

A classifier is trained on two number columns and one text column. Its log is
turned on; 2,000 rows drawn like the training rows flag no column; 2,000 rows
with ``x`` shifted and ``colour`` collapsed to one value flag exactly those two;
values never seen in training are counted; the PSIs reach ``/metrics``.
"""

import io

import numpy as np
import pandas as pd
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import eventually, train, upload, wait_ready

COLOURS = np.array(["red", "green", "blue"], dtype=object)


def rows(n: int, seed: int) -> pd.DataFrame:
    """Inputs drawn like the training rows."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"x": rng.normal(0, 1, n), "y": rng.uniform(0, 10, n), "colour": rng.choice(COLOURS, n)}
    )


@pytest.fixture(scope="module")
def owner(client, admin_token) -> str:
    name, password = "monitoring-owner", "monitoring-owner-password"
    response = client.post(
        "/resource/users", admin_token, json={"username": name, "password": password}
    )
    assert response.status_code == 201, response.text
    return client.token(name, password)


@pytest.fixture(scope="module")
def model(client, owner) -> str:
    """A logistic regression on 4,000 rows, its prediction log on."""
    frame = rows(4000, 0)
    noise = np.random.default_rng(1).normal(0, 0.5, len(frame))
    frame["label"] = np.where(frame["x"] + noise > 0, "yes", "no")
    dataset_id = upload(client, owner, frame)
    body = {"dataset_id": dataset_id, "target": "label", "estimator": "LogisticRegression"}
    record = wait_ready(client, owner, train(client, owner, body)["model_id"])
    assert record["status"] == "ready", record
    model_id = record["id"]
    changed = client.request(
        "PATCH", f"/resource/models/{model_id}", owner, json={"log_predictions": True}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["log_predictions"] is True
    return model_id


def predict(client, token, model_id: str, frame: pd.DataFrame) -> None:
    """Predict ``frame`` in requests of 500 rows."""
    for start in range(0, len(frame), 500):
        part = frame.iloc[start : start + 500]
        response = client.post(
            f"/resource/models/{model_id}/predict",
            token,
            data=part.to_csv(index=False),
            headers={"Content-Type": "text/csv"},
        )
        assert response.status_code == 200, response.text


def drift(client, token, model_id: str, window: int) -> dict:
    """The drift of the newest ``window`` rows, once that many are logged."""

    def full():
        response = client.get(f"/resource/models/{model_id}/drift?window={window}", token)
        assert response.status_code == 200, response.text
        return response.json() if response.json()["rows"] == window else None

    return eventually(full, timeout=30, message=f"{window} rows were not logged")


def test_drift_flags_exactly_the_shifted_and_collapsed_columns(client, owner, model):
    predict(client, owner, model, rows(2000, 10))
    stable = drift(client, owner, model, 2000)
    assert stable["source"] == "log"
    assert stable["drifted"] == []
    assert [c["feature"] for c in stable["columns"]] == ["x", "y", "colour"]

    shifted = rows(2000, 11)
    shifted["x"] = shifted["x"] + 1.5
    shifted["colour"] = "red"
    predict(client, owner, model, shifted)
    drift(client, owner, model, 4000)  # every row written (the log's writer gathers a moment)
    moved = drift(client, owner, model, 2000)
    assert moved["drifted"] == ["x", "colour"]
    assert moved["rows"] == 2000


def test_unseen_categories_are_counted(client, owner, model):
    frame = rows(200, 12)
    frame.loc[:49, "colour"] = "purple"
    predict(client, owner, model, frame)
    drift(client, owner, model, 4200)  # every row written
    colour = drift(client, owner, model, 200)["columns"][2]
    assert (colour["feature"], colour["unseen"], colour["unseen_share"]) == ("colour", 50, 0.25)


def test_drift_refusals_say_what_is_wrong(client, owner, model):
    bad = client.get(f"/resource/models/{model}/drift?window=ten", owner)
    assert bad.status_code == 400
    assert "window" in bad.json()["status"]
    too_big = client.get(f"/resource/models/{model}/drift?window=1000000", owner)
    assert too_big.status_code == 422
    assert "drift_max_window" in too_big.json()["status"]
    patch = client.request(
        "PATCH", f"/resource/models/{model}", owner, json={"log_predictions": "yes"}
    )
    assert patch.status_code == 400
    assert patch.json()["status"] == "'log_predictions' must be true or false"


def test_the_drift_gauges_reach_metrics(stack, client, owner, model):
    drift(client, owner, model, 100)
    response = requests.get(f"http://127.0.0.1:{stack.api_port}/metrics", timeout=30)
    samples = {
        (sample.labels.get("model_id"), sample.labels.get("feature")): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "mlservice_feature_drift"
    }
    assert {(model, "x"), (model, "y"), (model, "colour")} <= set(samples)


def test_the_report_gains_a_drift_plot_after_a_flush(client, owner, model):
    def plotted():
        predict(client, owner, model, rows(20, 13))  # something to flush
        report = client.get(f"/resource/models/{model}/report", owner).json()
        return next((p for p in report["plots"] if p["name"] == "drift"), None)

    plot = eventually(plotted, timeout=60, message="no drift plot in the report")
    assert plot["title"].startswith("Input drift of the last ")
    png = client.get(f"/resource/models/{model}/report/drift.png", owner)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


def test_the_log_holds_every_row_and_exports_as_a_data_set_that_trains(client, owner, admin_token):
    frame = rows(2000, 0)
    frame["label"] = np.where(frame["x"] > 0, "yes", "no")
    body = {
        "dataset_id": upload(client, owner, frame),
        "target": "label",
        "estimator": "DecisionTreeClassifier",
    }
    model_id = wait_ready(client, owner, train(client, owner, body)["model_id"])["id"]
    client.request("PATCH", f"/resource/models/{model_id}", owner, json={"log_predictions": True})
    sent = rows(1234, 3)
    predict(client, owner, model_id, sent)

    logged, dataset_id = export_rows(client, owner, model_id, 1234)
    dataset = client.get(f"/resource/datasets/{dataset_id}", owner).json()
    assert dataset["rows"] == 1234
    assert list(logged.columns) == [
        "x", "y", "colour", "prediction", "model_id", "model_version", "predicted_at", "request_id",
    ]  # fmt: skip
    # Every row once (two API workers write in their own order: compared sorted).
    assert np.array_equal(np.sort(logged["x"].to_numpy()), np.sort(sent["x"].to_numpy()))
    assert set(logged["model_id"]) == {model_id}
    assert logged["request_id"].notna().all()
    retrained = train(
        client,
        owner,
        {
            "dataset_id": dataset_id,
            "target": "prediction",
            "features": ["x", "y", "colour"],
            "estimator": "DecisionTreeClassifier",
        },
    )
    assert wait_ready(client, owner, retrained["model_id"])["status"] == "ready"


def export_rows(client, token, model_id: str, rows_wanted: int) -> tuple[pd.DataFrame, str]:
    """The model's prediction log, exported once it holds ``rows_wanted`` rows, and the id of
    the data set it was exported into."""

    def exported():
        response = client.post(f"/resource/models/{model_id}/prediction-log/export", token)
        if response.status_code != 202:
            return None  # nothing flushed yet (409)
        url = response.json()["status_url"]

        def finished():
            status = client.get(url, token).json()
            return status if status["state"] in ("SUCCESS", "FAILURE") else None

        state = eventually(finished, timeout=60)
        assert state["state"] == "SUCCESS", state
        dataset_id = response.json()["dataset_id"]
        download = client.get(f"/resource/datasets/{dataset_id}/download", token)
        logged = pd.read_parquet(io.BytesIO(download.content))
        return (logged, dataset_id) if len(logged) >= rows_wanted else None

    return eventually(exported, timeout=60, message=f"{rows_wanted} rows were not logged")


def test_predictions_by_registered_name_are_logged_with_the_model_they_reach(client, owner):
    frame = rows(600, 4)
    frame["label"] = np.where(frame["x"] > 0, "yes", "no")
    body = {
        "dataset_id": upload(client, owner, frame),
        "target": "label",
        "estimator": "LogisticRegression",
    }
    model_id = wait_ready(client, owner, train(client, owner, body)["model_id"])["id"]
    name = "watched-by-name"
    assert client.post("/resource/registry", owner, json={"name": name}).status_code == 201
    added = client.post(f"/resource/registry/{name}/versions", owner, json={"model_id": model_id})
    assert added.status_code == 201, added.text
    moved = client.request(
        "PUT", f"/resource/registry/{name}/aliases/production", owner, json={"version": 1}
    )
    assert moved.status_code in (200, 201), moved.text
    # The model's own log is off: a prediction by name is not logged yet.
    sent = rows(30, 5)
    unlogged = client.post(
        f"/resource/registry/{name}@production/predict",
        owner,
        json=sent.iloc[:5].to_dict("records"),
    )
    assert unlogged.status_code == 200, unlogged.text
    changed = client.request(
        "PATCH", f"/resource/registry/{name}", owner, json={"log_predictions": True}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["log_predictions"] is True
    by_alias = client.post(
        f"/resource/registry/{name}@production/predict", owner, json=sent.to_dict("records")
    )
    assert by_alias.status_code == 200, by_alias.text
    v2_rows = sent.iloc[:7]
    inputs = [
        {"name": "x", "shape": [7], "datatype": "FP64", "data": v2_rows["x"].tolist()},
        {"name": "y", "shape": [7], "datatype": "FP64", "data": v2_rows["y"].tolist()},
        {"name": "colour", "shape": [7], "datatype": "BYTES", "data": v2_rows["colour"].tolist()},
    ]
    by_v2 = client.post(f"/v2/models/{name}/infer", owner, json={"inputs": inputs})
    assert by_v2.status_code == 200, by_v2.text
    logged, _ = export_rows(client, owner, model_id, 37)
    assert len(logged) == 37  # the 5 rows sent before the name's log was on are not kept
    assert set(logged["model_id"]) == {model_id}
    assert np.array_equal(
        np.sort(logged["x"].to_numpy()),
        np.sort(np.concatenate([sent["x"].to_numpy(), v2_rows["x"].to_numpy()])),
    )
    entries = client.get(f"/resource/registry/{name}/history", owner).json()["history"]
    assert ("log_predictions_changed", False, True) in [
        (entry["event"], entry["before"], entry["after"]) for entry in entries
    ]


def trained(client, token, frame: pd.DataFrame, target: str, estimator: str, params=None) -> str:
    """A ready model served by scikit-learn (compile off: outputs compare exactly)."""
    body = {
        "dataset_id": upload(client, token, frame),
        "target": target,
        "features": ["x", "y", "colour"],
        "estimator": estimator,
        "params": params or {},
        "compile": False,
    }
    return wait_ready(client, token, train(client, token, body)["model_id"])["id"]


@pytest.fixture(scope="module")
def labelled() -> pd.DataFrame:
    frame = rows(1500, 5)
    frame.loc[::13, "y"] = np.nan
    frame["label"] = np.where(frame["x"] + (frame["colour"] == "red") * 0.5 > 0, "yes", "no")
    frame["value"] = 2 * frame["x"] + frame["y"].fillna(0) + (frame["colour"] == "red") * 3
    return frame


def explained(client, token, model_id: str, frame: pd.DataFrame) -> dict:
    response = client.post(
        f"/resource/models/{model_id}/explain",
        token,
        data=frame.to_csv(index=False),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def predicted(client, token, model_id: str, frame: pd.DataFrame, proba: bool = True) -> dict:
    response = client.post(
        f"/resource/models/{model_id}/predict?probabilities={str(proba).lower()}",
        token,
        data=frame.to_csv(index=False),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("estimator", "params", "method", "output"),
    [
        ("RandomForestClassifier", {"n_estimators": 20, "random_state": 0}, "tree", "probability"),
        ("LogisticRegression", {}, "linear", "decision"),
        ("KNeighborsClassifier", {}, "permutation", "probability"),
    ],
)
def test_classifier_contributions_add_up_to_the_models_output(
    client, owner, labelled, estimator, params, method, output
):
    model_id = trained(client, owner, labelled, "label", estimator, params)
    sample = rows(20, 21)
    answer = explained(client, owner, model_id, sample)
    assert (answer["method"], answer["output"], answer["exact"]) == (
        method, output, method != "permutation",
    )  # fmt: skip
    truth = predicted(client, owner, model_id, sample)
    for row, label, probabilities in zip(
        answer["rows"], truth["predictions"], truth["probabilities"], strict=True
    ):
        assert row["prediction"] == label
        assert list(row["contributions"]) == ["x", "y", "colour"]
        p = probabilities[label]
        expected = (
            p if output == "probability" else np.log(p / (1 - p)) * (1 if label == "yes" else -1)
        )
        assert abs(row["base_value"] + sum(row["contributions"].values()) - expected) < 1e-6


@pytest.mark.parametrize(
    ("estimator", "method"), [("Ridge", "linear"), ("DecisionTreeRegressor", "tree")]
)
def test_regressor_contributions_add_up_to_the_predicted_value(
    client, owner, labelled, estimator, method
):
    model_id = trained(client, owner, labelled, "value", estimator)
    sample = rows(20, 22)
    answer = explained(client, owner, model_id, sample)
    assert (answer["method"], answer["output"]) == (method, "value")
    values = predicted(client, owner, model_id, sample, proba=False)["predictions"]
    for row, value in zip(answer["rows"], values, strict=True):
        assert abs(row["base_value"] + sum(row["contributions"].values()) - value) < 1e-6


def test_an_explanation_takes_at_most_the_row_cap(client, owner, model):
    response = client.post(
        f"/resource/models/{model}/explain",
        owner,
        data=rows(101, 0).to_csv(index=False),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 422
    assert "explain_max_rows" in response.json()["status"]


def test_the_client_and_mls_drift_explain_and_export(stack, client, owner, model, tmp_path):
    from click.testing import CliRunner

    from mlservice_client import Client
    from mlservice_client.cli import cli

    sample = tmp_path / "rows.csv"
    rows(5, 30).to_csv(sample, index=False)
    with Client(stack.url, token=owner) as api:
        assert api.log_predictions(model, True)["log_predictions"] is True
        predict(client, owner, model, rows(100, 31))
        assert drift(client, owner, model, 100)["rows"] == 100
        assert api.drift(model, 100)["rows"] == 100
        answer = api.explain(model, sample)
        assert (answer["method"], len(answer["rows"])) == ("linear", 5)
        exported = api.export_prediction_log(model)
        assert len(exported["dataset_id"]) == 32
    env = {"MLS_URL": stack.url, "MLS_TOKEN": owner, "HOME": str(tmp_path)}
    runner = CliRunner()
    shown = runner.invoke(cli, ["drift", model, "--window", "100"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "drifted:" in shown.output
    explained_rows = runner.invoke(cli, ["explain", model, str(sample), "--json"], env=env)
    assert explained_rows.exit_code == 0, explained_rows.output
    exported_id = runner.invoke(cli, ["log", "export", model], env=env)
    assert exported_id.exit_code == 0, exported_id.output
    assert len(exported_id.output.strip().splitlines()[-1]) == 32
