"""The training report: plots of how a fitted model did on its held-out rows.

Rendered by the Celery worker right after fitting (:func:`.jobs.fit_model`),
the one moment when the fitted pipeline and the held-out rows, with their
true targets, are both at hand; the rows are not kept afterwards, so an
uploaded bundle's report has metrics and no plots. Which plots:

* classifiers: the confusion matrix, ROC and precision-recall curves (one
  curve per class, one-vs-rest, when there are more than two classes);
* regressors: predicted against actual, and the residuals;
* every model: the estimator's feature importances (one-hot columns summed
  back into their input column), or permutation importance on the held-out
  rows where the estimator has none (bounded: a few repeats on a sample); and
  where it has them, permutation importance too (``permutation_importance``):
  global importance measured the same way for every model;
* once its prediction log is on: the input drift (``drift``), added by the
  log's flush (:func:`drift_plot`, at most once a minute per model).

Each plot is stored as PNG and SVG beside the bundle, with ``report.json``
listing them (see :mod:`mlservice.store.report_files`). Rendering is headless and
deterministic: the Agg backend, :class:`~matplotlib.figure.Figure` objects
(never pyplot's global figures), fixed seeds, no dates in the files; SVG text
stays text (``svg.fonttype: none``), so labels can be searched. A plot that
fails is left out and its error recorded: a report never fails a training.
"""

from __future__ import annotations

import io
import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn import metrics

from ..store.bundles import ModelBundle, Step, Task
from ..store.report_files import ReportFiles
from ..table_features import DATE_FEATURES

# Headless: no display, whatever MPLBACKEND says (the figures here never need one).
matplotlib.use("Agg")

log = logging.getLogger(__name__)

#: The files of each plot, by extension.
FORMATS = ("png", "svg")
#: Pixels per inch of the PNGs: a 6.4 x 4.8 inch plot is 640 x 480 pixels.
DPI = 100
#: Permutation importance: shuffles per column, and at most this many held-out rows...
IMPORTANCE_REPEATS = 5
IMPORTANCE_MAX_ROWS = 2000
#: ...fewer on wide data: rows x columns stays under this (at least 200 rows).
IMPORTANCE_CELL_BUDGET = 200_000
#: The importance plot shows this many input columns at most (the largest).
TOP_COLUMNS = 20
#: Scatter plots draw at most this many points (a fixed sample), and curves this many classes.
MAX_POINTS = 5000
MAX_CURVES = 20
#: Class and column names longer than this are cut in the plots.
MAX_LABEL = 30

_METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}


@dataclass
class HeldOut:
    """The held-out rows a model was scored on, their true targets and its predictions.

    ``y`` and ``predicted`` hold label codes (indices into the bundle's
    ``classes``) for a classifier, numbers for a regressor: what the pipeline
    predicts. The plots share the one ``predict`` call.
    """

    x: pd.DataFrame
    y: np.ndarray
    predicted: np.ndarray


@dataclass
class RenderedPlot:
    """One plot of a report, in every format."""

    name: str
    title: str
    files: dict[str, bytes]

    def entry(self) -> dict[str, Any]:
        """How ``report.json`` lists the plot: name, title and the PNG's size in pixels."""
        width, height = png_size(self.files["png"])
        return {"name": self.name, "title": self.title, "width": width, "height": height}


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, from its IHDR chunk (the first, right after the signature)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def held_out_rows(bundle: ModelBundle, x: pd.DataFrame, target: pd.Series) -> HeldOut:
    """Pair the held-out rows with their targets, by index, encoded as the pipeline predicts.

    ``target`` is the data set's target column: the held-out rows keep the
    index labels of the rows they were split from.
    """
    values = target.loc[x.index].to_numpy()
    predicted = np.asarray(bundle.pipeline.predict(x))
    if bundle.task != Task.CLASSIFICATION:
        y = pd.to_numeric(values).astype("float64")
        return HeldOut(x, y, predicted.astype("float64"))
    codes = {label: code for code, label in enumerate(bundle.classes or [])}
    encoded = [codes[value.item() if isinstance(value, np.generic) else value] for value in values]
    return HeldOut(x, np.asarray(encoded, dtype="int64"), predicted.astype("int64"))


def _label(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _figure(width: float = 6.4, height: float = 4.8) -> tuple[Figure, Axes]:
    """A figure of its own (no pyplot state), laid out so labels are never cut."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return figure, figure.add_subplot()


def _save(figure: Figure) -> dict[str, bytes]:
    """The figure as PNG and SVG bytes, the same bytes for the same figure."""
    files = {}
    # SVG text as <text> elements; ids from a fixed salt, not a random one.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "mlservice-report"}):
        for fmt in FORMATS:
            buffer = io.BytesIO()
            figure.savefig(buffer, format=fmt, dpi=DPI, metadata=_METADATA[fmt])
            files[fmt] = buffer.getvalue()
    return files


def _sample(count: int, limit: int) -> np.ndarray:
    """At most ``limit`` row positions out of ``count``, the same ones every time, in order."""
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(0).choice(count, size=limit, replace=False))


# --- classifiers ----------------------------------------------------------------------------


def _class_scores(pipeline: Any, x: pd.DataFrame) -> tuple[dict[int, np.ndarray], str] | None:
    """Each class's score per row (label code -> scores) and what the score is; None if none.

    Probabilities where the estimator has them, else its decision function.
    Columns follow the classes the estimator saw in training.
    """
    if hasattr(pipeline, "predict_proba"):
        scores, kind = np.asarray(pipeline.predict_proba(x)), "probability"
    elif hasattr(pipeline, "decision_function"):
        scores, kind = np.asarray(pipeline.decision_function(x)), "decision function"
    else:
        return None
    codes = [int(code) for code in pipeline.classes_]
    if scores.ndim == 1:  # binary decision function: the score of the second class
        return {codes[0]: -scores, codes[1]: scores}, kind
    return {code: scores[:, i] for i, code in enumerate(codes)}, kind


def _curve_classes(bundle: ModelBundle, held: HeldOut, scores: dict[int, np.ndarray]) -> list[int]:
    """The classes that get a curve: binary, the second class; otherwise one per class.

    A class needs rows of its own and of others in the held-out rows; with
    many classes, the most frequent :data:`MAX_CURVES` are drawn.
    """
    classes = bundle.classes or []
    candidates = [1] if len(classes) == 2 else list(range(len(classes)))
    counts = np.bincount(held.y, minlength=len(classes))
    usable = [c for c in candidates if c in scores and 0 < counts[c] < len(held.y)]
    if not usable:
        raise ValueError("the held-out rows hold a single class: no curve can be drawn")
    return sorted(sorted(usable, key=lambda c: -counts[c])[:MAX_CURVES])


def _curve_name(bundle: ModelBundle, code: int) -> str:
    classes = bundle.classes or []
    if len(classes) == 2:
        return f"{_label(classes[1])} vs {_label(classes[0])}"
    return f"{_label(classes[code])} vs rest"


def confusion_matrix_plot(bundle: ModelBundle, held: HeldOut) -> tuple[str, Figure]:
    """Counts of held-out rows by actual (rows) and predicted (columns) class."""
    classes = bundle.classes or []
    matrix = metrics.confusion_matrix(held.y, held.predicted, labels=list(range(len(classes))))
    size = min(16.0, max(4.8, 2.4 + 0.45 * len(classes)))
    figure, axes = _figure(size + 1.2, size)
    image = axes.imshow(matrix, cmap="Blues", interpolation="nearest")
    figure.colorbar(image, ax=axes, label="rows")
    labels = [_label(value) for value in classes]
    axes.set_xticks(range(len(classes)), labels, rotation=45 if len(classes) > 3 else 0, ha="right")
    axes.set_yticks(range(len(classes)), labels)
    axes.set_xlabel(f"predicted {_label(bundle.target)}")
    axes.set_ylabel(f"actual {_label(bundle.target)}")
    if len(classes) <= MAX_CURVES:
        threshold = matrix.max() / 2 if matrix.size else 0
        for (row, column), count in np.ndenumerate(matrix):
            colour = "white" if count > threshold else "black"
            axes.text(column, row, str(count), ha="center", va="center", color=colour)
    title = f"Confusion matrix ({len(held.y)} held-out rows)"
    axes.set_title(title)
    return title, figure


def _scores_or_refuse(bundle: ModelBundle, held: HeldOut) -> tuple[dict[int, np.ndarray], str]:
    """The held-out rows' class scores and how they were got; the curves need them."""
    found = _class_scores(bundle.pipeline, held.x)
    if found is None:
        raise ValueError(f"{bundle.estimator} has neither predict_proba nor decision_function")
    return found


def roc_plot(bundle: ModelBundle, held: HeldOut) -> tuple[str, Figure]:
    """ROC curves (one-vs-rest per class for more than two classes), with their AUC."""
    scores, kind = _scores_or_refuse(bundle, held)
    figure, axes = _figure()
    for code in _curve_classes(bundle, held, scores):
        fpr, tpr, _ = metrics.roc_curve(held.y == code, scores[code])
        auc = metrics.auc(fpr, tpr)
        axes.plot(fpr, tpr, label=f"{_curve_name(bundle, code)} (AUC {auc:.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.legend(loc="lower right", fontsize="small")
    title = f"ROC curves (held-out rows, scored by {kind})"
    axes.set_title(title)
    return title, figure


def precision_recall_plot(bundle: ModelBundle, held: HeldOut) -> tuple[str, Figure]:
    """Precision-recall curves (one-vs-rest per class for more than two), with average precision."""
    scores, kind = _scores_or_refuse(bundle, held)
    figure, axes = _figure()
    for code in _curve_classes(bundle, held, scores):
        actual = held.y == code
        precision, recall, _ = metrics.precision_recall_curve(actual, scores[code])
        average = metrics.average_precision_score(actual, scores[code])
        axes.plot(
            recall,
            precision,
            drawstyle="steps-post",
            label=f"{_curve_name(bundle, code)} (AP {average:.3f})",
        )
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.legend(loc="lower left", fontsize="small")
    title = f"Precision-recall curves (held-out rows, scored by {kind})"
    axes.set_title(title)
    return title, figure


# --- regressors -----------------------------------------------------------------------------


def _regression_points(bundle: ModelBundle, held: HeldOut) -> tuple[np.ndarray, np.ndarray, str]:
    """Actual and predicted values of (a sample of) the held-out rows, and the title's note."""
    rows = _sample(len(held.y), MAX_POINTS)
    note = f"{len(rows)} held-out rows" + (f" of {len(held.y)}" if len(rows) < len(held.y) else "")
    return held.y[rows], held.predicted[rows], note


def predicted_vs_actual_plot(bundle: ModelBundle, held: HeldOut) -> tuple[str, Figure]:
    """Each held-out row's prediction against its actual value; perfect is the diagonal."""
    actual, predicted, note = _regression_points(bundle, held)
    figure, axes = _figure(5.6, 5.6)
    axes.scatter(actual, predicted, s=10, alpha=0.6)
    low = float(min(actual.min(), predicted.min()))
    high = float(max(actual.max(), predicted.max()))
    axes.plot([low, high], [low, high], linestyle="--", color="grey", label="perfect")
    axes.set_xlabel(f"actual {_label(bundle.target)}")
    axes.set_ylabel(f"predicted {_label(bundle.target)}")
    axes.legend(loc="upper left", fontsize="small")
    title = f"Predicted against actual ({note})"
    axes.set_title(title)
    return title, figure


def residuals_plot(bundle: ModelBundle, held: HeldOut) -> tuple[str, Figure]:
    """Residuals (actual - predicted) against the prediction: a pattern is what it misses."""
    actual, predicted, note = _regression_points(bundle, held)
    figure, axes = _figure()
    axes.scatter(predicted, actual - predicted, s=10, alpha=0.6)
    axes.axhline(0, linestyle="--", color="grey")
    axes.set_xlabel(f"predicted {_label(bundle.target)}")
    axes.set_ylabel("residual (actual - predicted)")
    title = f"Residuals ({note})"
    axes.set_title(title)
    return title, figure


# --- every model ----------------------------------------------------------------------------


def input_column_importances(pipeline: Any, values: np.ndarray) -> dict[str, float]:
    """Importances of the pipeline's encoded columns, summed per input column.

    A text column's one-hot columns go back to it (one per category the
    encoder kept). If the encoded columns cannot be matched to the inputs
    (an imputer dropped a column empty in training), each encoded column is
    listed under its own name (``city_Paris``).
    """
    preprocess = pipeline.named_steps[Step.PREPROCESS.value]
    totals: dict[str, float] = {}
    for name, transformer, columns in preprocess.transformers_:
        part = values[preprocess.output_indices_[name]]
        if transformer == "drop" or not len(part):
            continue
        widths = [1] * len(columns)
        if name == Step.CATEGORICAL.value:
            encoder = transformer.named_steps[Step.ENCODE.value]
            widths = [len(categories) for categories in encoder.categories_]
        elif name == Step.DATETIME.value:
            widths = [len(DATE_FEATURES)] * len(columns)
        elif name.startswith(f"{Step.TEXT.value}:"):
            widths = [len(part)]
        if sum(widths) != len(part):
            names = preprocess.get_feature_names_out()
            return {str(n): float(v) for n, v in zip(names, values, strict=True)}
        start = 0
        for column, width in zip(columns, widths, strict=True):
            totals[str(column)] = float(part[start : start + width].sum())
            start += width
    return totals


def _permutation_rows(held: HeldOut) -> np.ndarray:
    """The held-out rows permutation importance shuffles: fewer on wide data."""
    columns = max(1, held.x.shape[1])
    limit = min(IMPORTANCE_MAX_ROWS, max(200, IMPORTANCE_CELL_BUDGET // columns))
    return _sample(len(held.y), limit)


def permutation_importances(
    pipeline: Any, x: pd.DataFrame, y: np.ndarray, task: str, repeats: int
) -> dict[str, tuple[float, float]]:
    """Per input column: the mean and spread of the score's drop when that column is shuffled.

    The score is the estimator's own (accuracy, or R²). Unlike scikit-learn's
    ``permutation_importance``, the ``repeats`` shuffles of a column go through
    one ``predict`` call: a pipeline's per-call cost (several ms; far more for
    estimators that start threads) is paid once per column, not once per shuffle.
    """
    score = metrics.accuracy_score if task == Task.CLASSIFICATION else metrics.r2_score
    baseline = score(y, pipeline.predict(x))
    rng = np.random.default_rng(0)
    stacked = pd.concat([x] * repeats, ignore_index=True)
    found = {}
    for column in x.columns:
        shuffled = stacked.copy()
        values = x[column].to_numpy()
        shuffled[column] = np.concatenate([rng.permutation(values) for _ in range(repeats)])
        predicted = np.asarray(pipeline.predict(shuffled)).reshape(repeats, len(x))
        drops = np.array([baseline - score(y, each) for each in predicted])
        found[str(column)] = (float(drops.mean()), float(drops.std()))
    return found


def _permutation_values(
    bundle: ModelBundle, held: HeldOut
) -> tuple[dict[str, float], dict[str, float], str, str]:
    """(means, spreads, title, axis label) of permutation importance on the held-out rows."""
    rows = _permutation_rows(held)
    found = permutation_importances(
        bundle.pipeline,
        held.x.iloc[rows].reset_index(drop=True),
        held.y[rows],
        bundle.task,
        IMPORTANCE_REPEATS,
    )
    score = "accuracy" if bundle.task == Task.CLASSIFICATION else "R²"
    return (
        {column: mean for column, (mean, _) in found.items()},
        {column: std for column, (_, std) in found.items()},
        f"Permutation importance ({len(rows)} held-out rows, {IMPORTANCE_REPEATS} repeats)",
        f"drop in {score} when the column is shuffled",
    )


def _importance_bars(
    values: dict[str, float], spread: dict[str, float], title: str, axis: str
) -> tuple[str, Figure]:
    """Horizontal bars of the largest :data:`TOP_COLUMNS` values, with error bars if any."""
    ranked = sorted(values, key=lambda column: (-values[column], column))[:TOP_COLUMNS]
    if len(values) > len(ranked):
        title += f", top {len(ranked)} of {len(values)} columns"
    shown = ranked[::-1]  # barh draws bottom-up: the largest on top
    figure, axes = _figure(6.4, max(3.2, 1.4 + 0.32 * len(shown)))
    errors = [spread[column] for column in shown] if spread else None
    axes.barh(range(len(shown)), [values[column] for column in shown], xerr=errors)
    axes.set_yticks(range(len(shown)), [_label(column) for column in shown])
    axes.set_xlabel(axis)
    axes.set_title(title, fontsize="medium")
    return title, figure


def importance_plot(bundle: ModelBundle, held: HeldOut) -> tuple[str, Figure]:
    """How much each input column matters: the estimator's own importances, else permutation.

    Permutation importance shuffles one input column at a time in the held-out
    rows and measures the drop in the model's score (accuracy, or R²).
    """
    estimator = bundle.pipeline.named_steps[Step.ESTIMATOR.value]
    if hasattr(estimator, "feature_importances_"):
        values = input_column_importances(
            bundle.pipeline, np.asarray(estimator.feature_importances_)
        )
        title = f"Feature importances of {bundle.estimator}"
        return _importance_bars(
            values, {}, title, "importance (one-hot columns summed per input column)"
        )
    return _importance_bars(*_permutation_values(bundle, held))


class NotApplicable(Exception):
    """A plot this model does not get (left out of the report, not an error)."""


def permutation_importance_plot(bundle: ModelBundle, held: HeldOut) -> tuple[str, Figure]:
    """Global importance on the held-out split, for models whose ``feature_importance`` plot
    shows the estimator's own importances (for the others, that plot already is this one)."""
    estimator = bundle.pipeline.named_steps[Step.ESTIMATOR.value]
    if not hasattr(estimator, "feature_importances_"):
        raise NotApplicable("feature_importance is the permutation importance")
    return _importance_bars(*_permutation_values(bundle, held))


def drift_plot(columns: list[dict[str, Any]], threshold: float, rows: int) -> RenderedPlot:
    """The report's drift plot: each input column's PSI against the threshold, drifted
    columns in red (drawn by the prediction log's flush: mlservice.tasks.monitoring_tasks)."""
    shown = [column for column in columns if column["psi"] is not None][-TOP_COLUMNS:][::-1]
    figure, axes = _figure(6.4, max(3.2, 1.4 + 0.32 * len(shown)))
    colours = ["tab:red" if column["drifted"] else "tab:blue" for column in shown]
    axes.barh(range(len(shown)), [column["psi"] for column in shown], color=colours)
    axes.set_yticks(range(len(shown)), [_label(column["feature"]) for column in shown])
    axes.axvline(threshold, color="black", linestyle="--", linewidth=1)
    axes.set_xlabel(f"population stability index (drifted above {threshold:g})")
    title = f"Input drift of the last {rows} predicted rows against training"
    axes.set_title(title, fontsize="medium")
    return RenderedPlot("drift", title, _save(figure))


def store_extra_plot(reports: ReportFiles, model_id: str, plot: RenderedPlot) -> bool:
    """Add (or replace) a plot drawn after training in the model's stored report; False
    (nothing stored) while the training's own plots are still being rendered."""
    listing = reports.listing(model_id) or {"plots": [], "errors": []}
    if listing.get("rendering"):
        return False
    for fmt, data in plot.files.items():
        reports.store(model_id, f"{plot.name}.{fmt}", data)
    others = [entry for entry in listing.get("plots", []) if entry["name"] != plot.name]
    reports.store_listing(model_id, {**listing, "plots": [*others, plot.entry()]})
    return True


# --- the report ------------------------------------------------------------------------------

Renderer = Callable[[ModelBundle, HeldOut], tuple[str, Figure]]

CLASSIFICATION_PLOTS: dict[str, Renderer] = {
    "confusion_matrix": confusion_matrix_plot,
    "roc": roc_plot,
    "precision_recall": precision_recall_plot,
    "feature_importance": importance_plot,
    "permutation_importance": permutation_importance_plot,
}
REGRESSION_PLOTS: dict[str, Renderer] = {
    "predicted_vs_actual": predicted_vs_actual_plot,
    "residuals": residuals_plot,
    "feature_importance": importance_plot,
    "permutation_importance": permutation_importance_plot,
}


def plots_for(task: str) -> dict[str, Renderer]:
    """The plots a model of this task gets, by name (the name of their files)."""
    return CLASSIFICATION_PLOTS if task == Task.CLASSIFICATION else REGRESSION_PLOTS


def render(
    bundle: ModelBundle, held: HeldOut, renderers: dict[str, Renderer] | None = None
) -> tuple[list[RenderedPlot], list[dict[str, str]]]:
    """Every plot of the model's report, and the errors of those that failed.

    One failing plot (a single class in the held-out rows, an estimator
    without scores) costs only itself; its error names it.
    """
    plots, errors = [], []
    for name, renderer in (renderers or plots_for(bundle.task)).items():
        try:
            title, figure = renderer(bundle, held)
            plots.append(RenderedPlot(name, title, _save(figure)))
        except NotApplicable:
            continue
        except Exception as exc:
            log.warning("the %s plot failed to render", name, exc_info=True)
            errors.append({"plot": name, "error": f"{type(exc).__name__}: {exc}"})
    return plots, errors


def render_and_store(
    reports: ReportFiles, model_id: str, bundle: ModelBundle, x: pd.DataFrame, target: pd.Series
) -> dict[str, Any]:
    """Render the model's report on its held-out rows ``x`` and store it; never raises.

    Run once the model is ready (it is served meanwhile), after
    :meth:`~mlservice.store.report_files.ReportFiles.mark_rendering`. ``target`` is the
    data set's target column (see :func:`held_out_rows`). The answer is ``report.json``.
    """
    started = time.perf_counter()
    plots: list[RenderedPlot] = []
    errors: list[dict[str, str]] = []
    try:
        plots, errors = render(bundle, held_out_rows(bundle, x, target))
    except Exception as exc:
        log.exception("model %s: its report could not be rendered", model_id)
        errors.append({"plot": "*", "error": f"{type(exc).__name__}: {exc}"})
    entries = []
    for plot in plots:
        try:
            for fmt, data in plot.files.items():
                reports.store(model_id, f"{plot.name}.{fmt}", data)
            entries.append(plot.entry())
        except Exception as exc:
            log.exception("model %s: the %s plot could not be stored", model_id, plot.name)
            errors.append({"plot": plot.name, "error": f"{type(exc).__name__}: {exc}"})
    report = {
        "plots": entries,
        "errors": errors,
        "held_out_rows": len(x),
        "render_seconds": round(time.perf_counter() - started, 3),
    }
    try:
        reports.store_listing(model_id, report)
    except Exception:
        log.exception("model %s: its report could not be stored", model_id)
    return report
