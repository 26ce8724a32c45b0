"""Training report plots: valid images whose labels are the model's classes and input columns."""

import io
import json
import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from matplotlib import image

from mlservice.store.artifacts import ArtifactStore
from mlservice.store.report_files import REPORT_FILENAME, ReportFiles
from mlservice.training import fitting, reports
from tests.data import make_customers

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SPECIES = ["Adelie", "Chinstrap", "Gentoo"]


def penguins(rows: int = 300, seed: int = 1) -> pd.DataFrame:
    """Penguin-like data: three species told apart by bill and flipper, on three islands."""
    rng = np.random.default_rng(seed)
    species = rng.choice(SPECIES, size=rows)
    centre = {"Adelie": (39, 190), "Chinstrap": (49, 196), "Gentoo": (47, 217)}
    bill = np.array([centre[s][0] for s in species]) + rng.normal(0, 2.5, rows)
    flipper = np.array([centre[s][1] for s in species]) + rng.normal(0, 5, rows)
    island = np.where(species == "Gentoo", "Biscoe", rng.choice(["Dream", "Torgersen"], rows))
    return pd.DataFrame(
        {
            "bill_length_mm": bill.round(1),
            "flipper_length_mm": flipper.round(0),
            "island": island.astype(object),
            "species": species.astype(object),
        }
    )


def fit(frame: pd.DataFrame, target: str, estimator: str, params: dict):
    """A fitted model and its held-out rows with their true targets."""
    fitted = fitting.train(frame, target, estimator, params)
    return fitted, reports.held_out_rows(fitted.bundle, fitted.held_out, frame[target])


def rendered(fitted, held) -> dict[str, reports.RenderedPlot]:
    plots, errors = reports.render(fitted.bundle, held)
    assert errors == []
    return {plot.name: plot for plot in plots}


def svg_texts(data: bytes) -> list[str]:
    """The text elements of an SVG (with svg.fonttype none, labels are text, not paths)."""
    return [
        re.sub(r"\s+", " ", t).strip()
        for t in re.findall(r"<text[^>]*>([^<]*)</text>", data.decode())
    ]


def check_png(plot: reports.RenderedPlot) -> tuple[int, int]:
    """A PNG that decodes, of the size its report entry says; (width, height)."""
    data = plot.files["png"]
    assert data.startswith(PNG_MAGIC)
    entry = plot.entry()
    pixels = image.imread(io.BytesIO(data), format="png")
    assert pixels.shape[:2] == (entry["height"], entry["width"])
    return entry["width"], entry["height"]


@pytest.fixture(scope="module")
def penguin_model():
    return fit(penguins(), "species", "RandomForestClassifier", {"n_estimators": 20})


@pytest.fixture(scope="module")
def penguin_plots(penguin_model):
    return rendered(*penguin_model)


def test_a_classifier_gets_its_plots_as_valid_png_and_svg(penguin_plots):
    assert list(penguin_plots) == [
        "confusion_matrix",
        "roc",
        "precision_recall",
        "feature_importance",
        "permutation_importance",
    ]
    for plot in penguin_plots.values():
        check_png(plot)
        assert plot.files["svg"].lstrip().startswith(b"<?xml")
        assert b"<svg" in plot.files["svg"]
    assert check_png(penguin_plots["roc"]) == (640, 480)


def test_the_confusion_matrix_is_labelled_with_the_classes(penguin_model, penguin_plots):
    fitted, held = penguin_model
    texts = svg_texts(penguin_plots["confusion_matrix"].files["svg"])
    assert texts.count("Adelie") == 2 and texts.count("Gentoo") == 2  # both axes
    assert "predicted species" in texts and "actual species" in texts
    # Each cell is annotated with its count (the colour bar's ticks are numbers too).
    predicted = fitted.bundle.pipeline.predict(held.x)
    assert (held.predicted == predicted).all()
    cells = Counter(str((predicted[held.y == a] == p).sum()) for a in range(3) for p in range(3))
    assert cells <= Counter(texts)
    assert f"Confusion matrix ({len(held.y)} held-out rows)" in texts


def test_multiclass_curves_are_one_vs_rest_per_class(penguin_plots):
    roc = " ".join(svg_texts(penguin_plots["roc"].files["svg"]))
    pr = " ".join(svg_texts(penguin_plots["precision_recall"].files["svg"]))
    for name in SPECIES:
        assert re.search(rf"{name} vs rest \(AUC \d\.\d{{3}}\)", roc)
        assert re.search(rf"{name} vs rest \(AP \d\.\d{{3}}\)", pr)


def test_importances_name_the_input_columns_with_one_hot_columns_summed(
    penguin_model, penguin_plots
):
    texts = svg_texts(penguin_plots["feature_importance"].files["svg"])
    assert {"bill_length_mm", "flipper_length_mm", "island"} <= set(texts)
    assert not [t for t in texts if t.startswith("island_")]
    assert "Feature importances of RandomForestClassifier" in texts
    fitted, _ = penguin_model
    estimator = fitted.bundle.pipeline.named_steps["estimator"]
    summed = reports.input_column_importances(
        fitted.bundle.pipeline, estimator.feature_importances_
    )
    assert list(summed) == ["bill_length_mm", "flipper_length_mm", "island"]
    assert sum(summed.values()) == pytest.approx(1.0)


def test_rendering_is_deterministic(penguin_model, penguin_plots):
    again = rendered(*penguin_model)
    for name, plot in penguin_plots.items():
        assert again[name].files == plot.files, name


def test_a_binary_classifier_without_importances_gets_permutation_importance():
    customers = make_customers.customers()
    fitted, held = fit(customers, "plan", "LogisticRegression", {"max_iter": 500})
    plots = rendered(fitted, held)
    assert list(plots) == ["confusion_matrix", "roc", "precision_recall", "feature_importance"]
    for plot in plots.values():
        check_png(plot)
    roc = " ".join(svg_texts(plots["roc"].files["svg"]))
    assert re.search(r"premium vs basic \(AUC \d\.\d{3}\)", roc)
    assert "vs rest" not in roc  # one curve: the second class against the first
    importance = svg_texts(plots["feature_importance"].files["svg"])
    assert f"Permutation importance ({len(held.y)} held-out rows, 5 repeats)" in importance
    assert "drop in accuracy when the column is shuffled" in importance
    assert {"age", "city", "income"} <= set(importance)
    texts = svg_texts(plots["confusion_matrix"].files["svg"])
    assert texts.count("basic") == 2 and texts.count("premium") == 2


def test_permutation_importance_is_the_score_lost_by_shuffling_a_column():
    customers = make_customers.customers()
    fitted, held = fit(customers, "plan", "LogisticRegression", {"max_iter": 500})
    found = reports.permutation_importances(
        fitted.bundle.pipeline, held.x.reset_index(drop=True), held.y, "classification", 5
    )
    assert list(found) == ["age", "city", "income"]
    assert found["income"][0] > 0.1  # the plan is decided by income
    assert abs(found["city"][0]) < 0.03 and found["city"][0] < found["income"][0]
    again = reports.permutation_importances(
        fitted.bundle.pipeline, held.x.reset_index(drop=True), held.y, "classification", 5
    )
    assert again == found


def test_a_regressor_gets_predicted_against_actual_and_residuals():
    customers = make_customers.customers()
    fitted, held = fit(customers, "income", "Ridge", {})
    plots = rendered(fitted, held)
    assert list(plots) == ["predicted_vs_actual", "residuals", "feature_importance"]
    for plot in plots.values():
        check_png(plot)
    scatter = svg_texts(plots["predicted_vs_actual"].files["svg"])
    assert "actual income" in scatter and "predicted income" in scatter
    assert f"Predicted against actual ({len(held.y)} held-out rows)" in scatter
    assert "residual (actual - predicted)" in svg_texts(plots["residuals"].files["svg"])
    importance = svg_texts(plots["feature_importance"].files["svg"])
    assert "drop in R² when the column is shuffled" in importance
    assert {"age", "city", "plan"} <= set(importance)


def test_a_failing_plot_is_recorded_and_the_others_are_rendered(penguin_model):
    fitted, held = penguin_model
    adelie = held.y == 0
    one_class = reports.HeldOut(held.x[adelie], held.y[adelie], held.predicted[adelie])
    plots, errors = reports.render(fitted.bundle, one_class)
    assert [plot.name for plot in plots] == [
        "confusion_matrix",
        "feature_importance",
        "permutation_importance",
    ]
    assert errors == [
        {
            "plot": name,
            "error": "ValueError: the held-out rows hold a single class: no curve can be drawn",
        }
        for name in ("roc", "precision_recall")
    ]


@pytest.mark.filterwarnings("ignore:Skipping features without any observed values")
def test_encoded_columns_keep_their_names_when_they_cannot_be_summed():
    frame = penguins().assign(empty=np.nan)  # the imputer drops a column empty in training
    fitted, _ = fit(frame, "species", "RandomForestClassifier", {"n_estimators": 5})
    estimator = fitted.bundle.pipeline.named_steps["estimator"]
    importances = reports.input_column_importances(
        fitted.bundle.pipeline, estimator.feature_importances_
    )
    assert list(importances) == [
        "bill_length_mm",
        "flipper_length_mm",
        "island_Biscoe",
        "island_Dream",
        "island_Torgersen",
    ]


def test_png_size_refuses_what_is_not_a_png():
    with pytest.raises(ValueError, match="not a PNG"):
        reports.png_size(b"GIF89a" + bytes(30))


@pytest.fixture
def files(tmp_path) -> ReportFiles:
    """Report files in a temporary artifact store."""
    return ReportFiles(ArtifactStore(tmp_path))


def test_stored_report_replaces_the_plots_of_an_earlier_fit(files, penguin_model):
    fitted, held = penguin_model
    target = pd.Series(np.array(SPECIES, dtype=object)[held.y], index=held.x.index)
    stale = files.path("m1", "old_plot.png")
    stale.parent.mkdir(parents=True)
    stale.write_bytes(PNG_MAGIC)
    files.mark_rendering("m1")  # before the model is ready
    assert not stale.exists()
    shown = files.describe({"id": "m1", "source": "trained"})
    assert shown["plots"] == [] and shown["reason"].startswith("the plots are being rendered")
    report = reports.render_and_store(files, "m1", fitted.bundle, held.x, target)
    assert files.listing("m1") == report
    assert [plot["name"] for plot in report["plots"]] == list(reports.CLASSIFICATION_PLOTS)
    assert report["errors"] == [] and report["held_out_rows"] == len(held.y)
    for plot in report["plots"]:
        data = files.path("m1", plot["name"] + ".png").read_bytes()
        assert reports.png_size(data) == (plot["width"], plot["height"])
        assert files.path("m1", plot["name"] + ".svg").is_file()
    names = sorted(p.name for p in files.path("m1", "x").parent.iterdir())
    assert names == sorted(
        [REPORT_FILENAME]
        + [f"{n}.{f}" for n in reports.CLASSIFICATION_PLOTS for f in ("png", "svg")]
    )


def test_a_report_that_cannot_be_rendered_records_why_and_does_not_raise(files, penguin_model):
    fitted, held = penguin_model
    no_targets = pd.Series([], dtype=object)  # the held-out rows' targets are missing
    report = reports.render_and_store(files, "m2", fitted.bundle, held.x, no_targets)
    assert report["plots"] == []
    assert report["errors"][0]["plot"] == "*"
    assert report["errors"][0]["error"].startswith("KeyError")
    assert json.loads(files.path("m2", REPORT_FILENAME).read_text()) == report


def test_an_uploaded_model_says_why_it_has_no_plots(files):
    record = {"id": "m3", "source": "upload", "task": "regression", "metrics": {"r2": 0.9}}
    answer = files.describe(record)
    assert answer["plots"] == [] and answer["metrics"] == {"r2": 0.9}
    assert answer["reason"] == "an uploaded bundle has no held-out rows to plot"


def test_a_run_that_died_while_drawing_says_so(files):
    files.mark_rendering("m2")
    files.abandon_rendering("m2")
    shown = files.describe({"id": "m2", "source": "trained"})
    assert shown["plots"] == [] and shown["reason"] == "every plot failed to render: see errors"
    assert shown["errors"] == [
        {
            "plot": "*",
            "error": "the worker stopped while drawing the plots; train the model again for them",
        }
    ]
    files.abandon_rendering("m3")  # no report at all: nothing to say
    assert files.listing("m3") is None


def test_the_drift_plot_shows_each_columns_psi_and_joins_the_stored_report(tmp_path):
    columns = [
        {"feature": "age", "psi": 0.01, "drifted": False},
        {"feature": "city", "psi": 3.2, "drifted": True},
        {"feature": "income", "psi": None, "drifted": False},
    ]
    plot = reports.drift_plot(columns, 0.2, 2000)
    check_png(plot)
    texts = svg_texts(plot.files["svg"])
    assert {"age", "city"} <= set(texts) and "income" not in texts
    assert "population stability index (drifted above 0.2)" in texts
    files = ReportFiles(ArtifactStore(tmp_path))
    files.store_listing("m", {"plots": [{"name": "roc"}], "errors": []})
    reports.store_extra_plot(files, "m", plot)
    reports.store_extra_plot(files, "m", plot)  # replaced, not added twice
    assert [entry["name"] for entry in files.listing("m")["plots"]] == ["roc", "drift"]
    assert files.path("m", "drift.svg").read_bytes() == plot.files["svg"]
