"""``/resource/searches``: hyperparameter searches and AutoML, run by every Celery worker.

Everything a request can get wrong (its shape, every estimator, parameter
and value of its space, its scorer, its budget, the data set) is checked
here before anything runs (:mod:`mlservice.training.search_request`); the
search itself is moved on by the workers (:mod:`mlservice.training.search_runs`),
which this module never imports: it sends the first step by task name, and
reads the search's record, leaderboard and report files from the store.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, send_file, url_for

from ..celery_app import TaskName
from ..errors import Conflict, NotFound
from ..store.records import ModelStatus
from ..store.report_files import plot_names
from ..store.search_records import SearchRecord, view
from ..training.search_request import accept
from .auth import current_identity, require_token
from .model_reports import PLOT_MEDIA_TYPES
from .parsing import json_body, page_args
from .services import services

bp = Blueprint("searches", __name__, url_prefix="/resource/searches")


def _visible(search_id: str) -> SearchRecord:
    """The search if the caller may see it; 404 otherwise."""
    return services().searches.get(search_id, current_identity())


def _shown(record: SearchRecord, with_leaderboard: bool = True) -> dict[str, Any]:
    answer: dict[str, Any] = view(
        record, services().searches.trials(record["id"]), with_leaderboard
    )
    return answer


@bp.post("")
@require_token()
def create_search() -> tuple[Response, int, dict[str, str]]:
    """Check the search, store it, send its first step → 202 ``{search_id, status,
    status_url}`` with ``Location``: the search, which shows its leaderboard as it runs."""
    ctx = services()
    identity = current_identity()
    record = accept(
        json_body(),
        identity,
        lambda dataset_id: ctx.datasets.catalog.get(dataset_id, identity),
        ctx.settings.limits,
        ctx.settings.search,
    )
    if record["register_as"] is not None:
        ctx.registry.check_registrable(record["register_as"], identity)
    ctx.searches.create(record)

    def undo() -> None:
        ctx.searches.forget_active(record["id"])
        ctx.searches.catalog.delete(record["id"])

    ctx.enqueue(TaskName.START_SEARCH, (record["id"],), undo=undo)
    location = url_for("searches.get_search", search_id=record["id"])
    answer = {"search_id": record["id"], "status": record["status"], "status_url": location}
    return jsonify(answer), 202, {"Location": location}


@bp.get("")
@require_token()
def list_searches() -> Response:
    """Your searches (admins: everyone's), newest first, paged: counts and the best trial,
    without the leaderboards."""
    page, per_page = page_args()
    records, total = services().searches.page(current_identity(), page, per_page)
    shown = [_shown(record, with_leaderboard=False) for record in records]
    return jsonify(searches=shown, page=page, per_page=per_page, total=total)


@bp.get("/<hexid:search_id>")
@require_token()
def get_search(search_id: str) -> Response:
    """Status, trials done of total, elapsed, the best so far and the leaderboard."""
    response = jsonify(_shown(_visible(search_id)))
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.delete("/<hexid:search_id>")
@require_token()
def cancel_search(search_id: str) -> Response:
    """Cancel a search: it is ``cancelled`` at once, its queued trials never run, its running
    ones are stopped, its leaderboard is kept → 200 with the search. 409 if it had ended."""
    ctx = services()
    _visible(search_id)
    cancelled = ctx.searches.cancel(search_id)
    if cancelled is None:
        status = ctx.searches.get(search_id)["status"]
        raise Conflict(f"search {search_id!r} is already {status}: there is nothing to cancel")
    record, tasks = cancelled
    for task_id in tasks:
        ctx.revoke(task_id)
    model_id = record.get("best_model_id")
    if model_id:  # refitting: the model it was becoming goes too, unless it is ready
        try:
            if ctx.models.catalog.get(model_id)["status"] != ModelStatus.READY:
                ctx.models.delete(model_id)
                record = ctx.searches.update(search_id, best_model_id=None)
        except (NotFound, Conflict):
            pass
    return jsonify(_shown(record))


@bp.get("/<hexid:search_id>/report")
@require_token()
def get_report(search_id: str) -> Response:
    """The search's report: its plots (title, size, PNG and SVG URLs) once it is done."""
    record = _visible(search_id)
    stored = services().searches.reports.listing(search_id)
    if stored is None:
        raise Conflict(
            f"search {search_id!r} is {record['status']}: its report is drawn when it is done"
        )
    plots: list[dict[str, Any]] = stored.get("plots", [])
    for plot in plots:
        for extension in PLOT_MEDIA_TYPES:
            plot[extension] = url_for(
                "searches.get_plot", search_id=search_id, name=plot["name"], extension=extension
            )
    response = jsonify(search_id=search_id, plots=plots, errors=stored.get("errors", []))
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.get("/<hexid:search_id>/report/<name>.<extension>")
@require_token()
def get_plot(search_id: str, name: str, extension: str) -> Response:
    """One plot of the search's report as PNG or SVG; 404 naming its plots for another name."""
    _visible(search_id)
    files = services().searches.reports
    if extension not in PLOT_MEDIA_TYPES:
        raise NotFound(f"no plot format {extension!r}: use .png or .svg")
    names = plot_names(files.listing(search_id) or {"plots": []})
    if name not in names:
        there = ", ".join(names) if names else "none yet"
        raise NotFound(f"search {search_id!r} has no plot {name!r}; its plots: {there}")
    path = files.path(search_id, f"{name}.{extension}")
    if not path.is_file():
        raise NotFound(f"search {search_id!r} has no plot {name!r} any more")
    response = send_file(path, mimetype=PLOT_MEDIA_TYPES[extension], max_age=None)
    response.headers["Cache-Control"] = "private, no-cache"
    return response
