"""A search's report: its score by trial, its score against each parameter, its leaderboard.

Drawn by the worker that refits the best configuration, once every trial has
ended, with the same headless, deterministic rendering as a model's training
report (:mod:`.reports`: Agg, figures of their own, PNG and SVG with no dates).
The files live in ``searches/<id>/report/`` with ``report.json`` listing them
(:class:`~mlservice.store.search_records.SearchReportFiles`); the API serves
them without any plotting code. A plot that fails is left out and its error
recorded: a report never fails a search.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..store.search_records import (
    SearchRecord,
    SearchReportFiles,
    Trial,
    TrialStatus,
    leaderboard,
)
from . import reports
from .reports import DPI, RenderedPlot
from .search_space import Distribution, from_json

log = logging.getLogger(__name__)

#: The parameters plotted at most (the estimator counts as one with AutoML).
MAX_PARAMETERS = 12
#: Rows of the leaderboard's table.
TABLE_ROWS = 20
#: A parameter's values longer than this are cut in the plots and the table.
MAX_TEXT = 40


def _text(value: Any) -> str:
    shown = value if isinstance(value, str) else json.dumps(value)
    return shown if len(shown) <= MAX_TEXT else shown[: MAX_TEXT - 1] + "…"


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def score_by_trial(record: SearchRecord, trials: Sequence[Trial]) -> tuple[str, Figure]:
    """Each trial's CV score (mean, and its spread over the folds) in the order they were
    proposed, the best so far as a line, and the failed ones marked."""
    figure = _figure(7.2, 4.8)
    axes = figure.add_subplot()
    done = [t for t in trials if t.status == TrialStatus.DONE and t.cv_mean is not None]
    axes.errorbar(
        [t.trial for t in done],
        [float(t.cv_mean or 0.0) for t in done],
        yerr=[t.cv_std or 0.0 for t in done],
        fmt="o",
        capsize=3,
        label="CV mean ± std",
    )
    best: list[float] = []
    for trial in done:
        best.append(max(best[-1], trial.cv_mean or 0.0) if best else trial.cv_mean or 0.0)
    if done:
        axes.step([t.trial for t in done], best, where="post", color="grey", label="best so far")
    failed = [t.trial for t in trials if t.status == TrialStatus.FAILED]
    if failed and done:
        low = min(t.cv_mean or 0.0 for t in done)
        axes.scatter(failed, [low] * len(failed), marker="x", color="red", label="failed")
    axes.set_xlabel("trial")
    axes.set_ylabel(f"{record['cv']}-fold CV {record['scoring']}")
    axes.legend(loc="lower right", fontsize="small")
    title = f"Score by trial ({len(done)} done of {len(trials)}, {record['strategy']})"
    axes.set_title(title)
    return title, figure


def _parameters(record: SearchRecord) -> list[tuple[str, str, Any]]:
    """(estimator, parameter, spec) of each parameter plotted; with several estimators the
    estimator itself comes first (spec ``None``)."""
    spaces = from_json(record["space"])
    found: list[tuple[str, str, Any]] = []
    if len(spaces) > 1:
        found.append(("", "estimator", None))
    for name, space in spaces.items():
        for param, spec in space.items():
            found.append((name, param, spec))
    return found[:MAX_PARAMETERS]


def _plot_parameter(
    axes: Axes, estimator: str, param: str, spec: Any, done: Sequence[Trial], several: bool
) -> None:
    """One panel: the CV mean of each trial against one parameter's value."""
    if spec is None:  # the estimator, with AutoML
        names = sorted({t.estimator for t in done})
        axes.scatter(
            [names.index(t.estimator) for t in done], [float(t.cv_mean or 0.0) for t in done], s=14
        )
        axes.set_xticks(range(len(names)), [_text(n) for n in names], rotation=30, ha="right")
        axes.set_title("estimator", fontsize="small")
        return
    mine = [t for t in done if t.estimator == estimator and param in t.params]
    if isinstance(spec, Distribution):
        axes.scatter([t.params[param] for t in mine], [float(t.cv_mean or 0.0) for t in mine], s=14)
        if spec.log:
            axes.set_xscale("log")
    else:
        labels = [_text(value) for value in spec]
        positions = [labels.index(_text(t.params[param])) for t in mine]
        axes.scatter(positions, [float(t.cv_mean or 0.0) for t in mine], s=14)
        axes.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 3 else 0)
    axes.set_title(f"{estimator}: {param}" if several else param, fontsize="small")


def score_by_parameter(record: SearchRecord, trials: Sequence[Trial]) -> tuple[str, Figure]:
    """One panel per parameter: each done trial's CV score against the value it tried."""
    parameters = _parameters(record)
    if not parameters:
        raise ValueError("the space has no parameters: every trial tried the defaults")
    done = [t for t in trials if t.status == TrialStatus.DONE and t.cv_mean is not None]
    columns = min(3, len(parameters))
    rows = math.ceil(len(parameters) / columns)
    figure = _figure(3.2 * columns + 0.6, 2.8 * rows + 0.6)
    grid = figure.subplots(rows, columns, squeeze=False)
    several = len(from_json(record["space"])) > 1
    for index, axes in enumerate(grid.flat):
        if index >= len(parameters):
            axes.set_visible(False)
            continue
        estimator, param, spec = parameters[index]
        _plot_parameter(axes, estimator, param, spec, done, several)
        if index % columns == 0:
            axes.set_ylabel(f"CV {record['scoring']}", fontsize="small")
    title = f"Score against each parameter ({len(done)} trials done)"
    figure.suptitle(title)
    return title, figure


def leaderboard_table(record: SearchRecord, trials: Sequence[Trial]) -> tuple[str, Figure]:
    """The leaderboard's first rows as a table: rank, trial, estimator, parameters, scores,
    timings, status."""
    ranked = leaderboard(trials)[:TABLE_ROWS]
    header = ["#", "trial", "estimator", "params", "CV mean", "CV std", "fit s", "ms/row", "status"]
    cells = []
    for rank, trial in enumerate(ranked, start=1):
        params = ", ".join(f"{k}={_text(v)}" for k, v in sorted(trial.params.items()))
        cells.append(
            [
                str(rank) if trial.status == TrialStatus.DONE else "",
                str(trial.trial),
                trial.estimator,
                params[:60] + ("…" if len(params) > 60 else ""),
                f"{trial.cv_mean:.4f}" if trial.cv_mean is not None else "",
                f"{trial.cv_std:.4f}" if trial.cv_std is not None else "",
                f"{trial.fit_seconds:.3f}" if trial.fit_seconds is not None else "",
                f"{trial.predict_ms_per_row:.4f}" if trial.predict_ms_per_row is not None else "",
                trial.status,
            ]
        )
    figure = _figure(12.8, 0.9 + 0.28 * (len(cells) + 1))
    axes = figure.add_subplot()
    axes.axis("off")
    if cells:
        table = axes.table(cellText=cells, colLabels=header, loc="upper center", cellLoc="left")
        table.auto_set_font_size(False)
        table.set_fontsize(8)
        table.auto_set_column_width(list(range(len(header))))
    shown = f"the first {len(cells)} of {len(trials)}" if len(trials) > len(cells) else "all"
    title = f"Leaderboard ({shown} trials, by {record['cv']}-fold CV {record['scoring']})"
    axes.set_title(title)
    return title, figure


PLOTS = {
    "score_by_trial": score_by_trial,
    "score_by_parameter": score_by_parameter,
    "leaderboard": leaderboard_table,
}


def render_and_store(
    files: SearchReportFiles, record: SearchRecord, trials: Sequence[Trial]
) -> dict[str, Any]:
    """Draw every plot of the search's report and store it with its listing; never raises."""
    started = time.perf_counter()
    search_id = record["id"]
    entries, errors = [], []
    try:
        files.clear(search_id)
    except Exception:
        log.exception("search %s: its old report could not be removed", search_id)
    for name, draw in PLOTS.items():
        try:
            title, figure = draw(record, trials)
            plot = RenderedPlot(name, title, reports._save(figure))
            for fmt, data in plot.files.items():
                files.store(search_id, f"{name}.{fmt}", data)
            entries.append(plot.entry())
        except Exception as exc:
            log.warning("search %s: the %s plot failed", search_id, name, exc_info=True)
            errors.append({"plot": name, "error": f"{type(exc).__name__}: {exc}"})
    listing = {
        "plots": entries,
        "errors": errors,
        "render_seconds": round(time.perf_counter() - started, 3),
    }
    try:
        files.store_listing(search_id, listing)
    except Exception:
        log.exception("search %s: its report could not be stored", search_id)
    return listing
