"""/resource/models/{id}/report: the plots the worker renders after fitting, through NGINX."""

import re
import struct

import pytest

from tests.helpers import eventually, train, upload, wait_ready

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLASSIFIER_PLOTS = ["confusion_matrix", "roc", "precision_recall", "feature_importance"]
#: A forest (feature_importances_ of its own) gets permutation importance beside them.
FOREST_PLOTS = [*CLASSIFIER_PLOTS, "permutation_importance"]
REGRESSOR_PLOTS = ["predicted_vs_actual", "residuals", "feature_importance"]


def trained(client, token, dataset_id, body) -> dict:
    """A ready model whose report is rendered (the worker draws it once the model serves)."""
    accepted = train(client, token, {"dataset_id": dataset_id, **body})
    record = wait_ready(client, token, accepted["model_id"])
    assert record["status"] == "ready", record
    eventually(
        lambda: client.get(f"/resource/models/{record['id']}/report", token).json()["plots"],
        timeout=60,
        message="the report's plots were not rendered",
    )
    return record


@pytest.fixture(scope="module")
def dataset_id(client, admin_token, customers) -> str:
    return upload(client, admin_token, customers)


@pytest.fixture(scope="module")
def classifier(client, admin_token, dataset_id) -> dict:
    """A forest on the customers' plan (basic or premium), from age, city and income."""
    return trained(
        client,
        admin_token,
        dataset_id,
        {"target": "plan", "estimator": "RandomForestClassifier", "params": {"n_estimators": 30}},
    )


@pytest.fixture(scope="module")
def report(client, admin_token, classifier) -> dict:
    response = client.get(f"/resource/models/{classifier['id']}/report", admin_token)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "private, no-cache"
    return response.json()


def svg_texts(svg: str) -> list[str]:
    return [text.strip() for text in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def test_a_classifier_report_lists_its_plots_and_metrics(classifier, report):
    model_id = classifier["id"]
    assert [plot["name"] for plot in report["plots"]] == FOREST_PLOTS
    assert report["model_id"] == model_id and report["task"] == "classification"
    assert report["classes"] == ["basic", "premium"] and report["target"] == "plan"
    assert report["metrics"] == classifier["metrics"]
    assert report["held_out_rows"] == classifier["metrics"]["test_rows"] == 100
    assert report["errors"] == [] and "reason" not in report
    for plot in report["plots"]:
        assert plot["png"] == f"/resource/models/{model_id}/report/{plot['name']}.png"
        assert plot["svg"] == f"/resource/models/{model_id}/report/{plot['name']}.svg"
    titles = {plot["name"]: plot["title"] for plot in report["plots"]}
    assert titles["confusion_matrix"] == "Confusion matrix (100 held-out rows)"
    assert titles["feature_importance"] == "Feature importances of RandomForestClassifier"
    assert (
        titles["permutation_importance"] == "Permutation importance (100 held-out rows, 5 repeats)"
    )


def test_each_png_is_served_at_the_size_the_report_says(client, admin_token, report):
    for plot in report["plots"]:
        response = client.get(plot["png"], admin_token)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "image/png"
        assert response.headers["Cache-Control"] == "private, no-cache"
        data = response.content
        assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
        assert struct.unpack(">II", data[16:24]) == (plot["width"], plot["height"]), plot


def test_the_svgs_are_labelled_with_the_classes_and_columns(client, admin_token, report):
    plots = {plot["name"]: plot for plot in report["plots"]}
    response = client.get(plots["confusion_matrix"]["svg"], admin_token)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("image/svg+xml")
    texts = svg_texts(response.text)
    assert texts.count("basic") == 2 and texts.count("premium") == 2  # both axes
    assert {"actual plan", "predicted plan"} <= set(texts)
    roc = " ".join(svg_texts(client.get(plots["roc"]["svg"], admin_token).text))
    assert re.search(r"premium vs basic \(AUC \d\.\d{3}\)", roc)
    importance = svg_texts(client.get(plots["feature_importance"]["svg"], admin_token).text)
    assert {"age", "city", "income"} <= set(importance)  # city's one-hot columns summed


def test_another_users_model_report_is_404(client, new_user, classifier, report):
    _, _, other = new_user()
    model_id = classifier["id"]
    for path in (f"/resource/models/{model_id}/report", report["plots"][0]["png"]):
        response = client.get(path, other)
        assert response.status_code == 404
        assert response.json() == {"status": f"no model '{model_id}'"}


def test_an_unknown_plot_is_404_naming_the_plots_there_are(client, admin_token, classifier):
    model_id = classifier["id"]
    response = client.get(f"/resource/models/{model_id}/report/residuals.png", admin_token)
    assert response.status_code == 404
    assert response.json() == {
        "status": f"model '{model_id}' has no plot 'residuals'; its plots: "
        "confusion_matrix, roc, precision_recall, feature_importance, permutation_importance"
    }
    response = client.get(f"/resource/models/{model_id}/report/roc.gif", admin_token)
    assert response.status_code == 404
    assert response.json() == {"status": "no plot format 'gif': use .png or .svg"}


def test_a_regressor_report_has_the_regression_plots(client, admin_token, dataset_id):
    regressor = trained(
        client,
        admin_token,
        dataset_id,
        {"target": "income", "estimator": "HistGradientBoostingRegressor", "compile": False},
    )
    response = client.get(f"/resource/models/{regressor['id']}/report", admin_token)
    assert response.status_code == 200, response.text
    report = response.json()
    assert [plot["name"] for plot in report["plots"]] == REGRESSOR_PLOTS
    assert report["classes"] is None and report["metrics"] == regressor["metrics"]
    titles = {plot["name"]: plot["title"] for plot in report["plots"]}
    # No feature_importances_ on this estimator: permutation importance on the held-out rows.
    assert titles["feature_importance"] == "Permutation importance (100 held-out rows, 5 repeats)"
    scatter = client.get(report["plots"][0]["svg"], admin_token).text
    assert {"actual income", "predicted income"} <= set(svg_texts(scatter))
    png = client.get(report["plots"][1]["png"], admin_token).content
    assert struct.unpack(">II", png[16:24]) == (report["plots"][1]["width"], 480)


def test_a_failed_model_has_no_report_yet_409(client, admin_token, customers):
    few = upload(client, admin_token, customers.head(12))
    accepted = train(
        client,
        admin_token,
        {"dataset_id": few, "target": "plan", "estimator": "LogisticRegression", "cv": 20},
    )
    model_id = accepted["model_id"]
    assert wait_ready(client, admin_token, model_id)["status"] == "failed"
    for path in (
        f"/resource/models/{model_id}/report",
        f"/resource/models/{model_id}/report/roc.png",
    ):
        response = client.get(path, admin_token)
        assert response.status_code == 409
        assert response.json() == {"status": f"model '{model_id}' is failed, not ready"}


def test_an_uploaded_bundle_has_metrics_and_no_plots(client, admin_token, classifier):
    bundle = client.get(f"/resource/models/{classifier['id']}/download", admin_token)
    assert bundle.status_code == 200
    uploaded = client.post(
        "/resource/models/upload", admin_token, files={"file": ("plans.mlbundle", bundle.content)}
    )
    assert uploaded.status_code == 201, uploaded.text
    model_id = uploaded.json()["id"]
    report = client.get(f"/resource/models/{model_id}/report", admin_token).json()
    assert report["plots"] == [] and report["errors"] == []
    assert report["metrics"] == classifier["metrics"]
    assert report["reason"] == "an uploaded bundle has no held-out rows to plot"
    response = client.get(f"/resource/models/{model_id}/report/roc.png", admin_token)
    assert response.status_code == 404
    assert response.json() == {"status": f"model '{model_id}' has no plot 'roc'; its plots: none"}


def test_deleting_a_model_deletes_its_report(client, admin_token, dataset_id, settings):
    model = trained(
        client,
        admin_token,
        dataset_id,
        {"target": "plan", "estimator": "LogisticRegression", "compile": False},
    )
    directory = settings.artifact_dir / "models" / model["id"] / "report"
    expected = {f"{name}.{fmt}" for name in CLASSIFIER_PLOTS for fmt in ("png", "svg")}
    assert {path.name for path in directory.iterdir()} == expected | {"report.json"}
    assert client.delete(f"/resource/models/{model['id']}", admin_token).status_code == 204
    assert not directory.exists()
    assert client.get(f"/resource/models/{model['id']}/report", admin_token).status_code == 404
