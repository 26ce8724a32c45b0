"""``/resource/models/{id}/report``: a model's training report, its metrics and plots.

The plots are rendered by the worker when the model is fitted
(:mod:`mlservice.training.reports`); these routes only find them
(:mod:`mlservice.store.report_files`: no plotting code in the API), under the
same rules as the model's other routes: someone else's model is 404, one
not ready 409.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, send_file, url_for

from ..errors import NotFound
from ..store.records import ModelRecord
from ..store.report_files import plot_names
from .auth import current_identity, require_token
from .predict import check_ready
from .services import services

bp = Blueprint("model_reports", __name__, url_prefix="/resource/models")

#: Plot files by extension, and the type each is served as.
PLOT_MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


def _ready(model_id: str) -> ModelRecord:
    """The caller's ready model: 404 if it is not theirs (or gone), 409 if not ready."""
    record = services().models.catalog.get(model_id, current_identity())
    check_ready(model_id, record)
    return record


@bp.get("/<hexid:model_id>/report")
@require_token()
def get_report(model_id: str) -> Response:
    """Metrics and plots (title, size, PNG and SVG URLs); ``reason`` when there are none."""
    report: dict[str, Any] = services().reports.describe(_ready(model_id))
    for plot in report["plots"]:
        for extension in PLOT_MEDIA_TYPES:
            plot[extension] = url_for(
                "model_reports.get_plot", model_id=model_id, name=plot["name"], extension=extension
            )
    response = jsonify(report)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.get("/<hexid:model_id>/report/<name>.<extension>")
@require_token()
def get_plot(model_id: str, name: str, extension: str) -> Response:
    """One plot as PNG or SVG (its extension); 404 naming the model's plots for an unknown name."""
    record = _ready(model_id)
    reports = services().reports
    if extension not in PLOT_MEDIA_TYPES:
        raise NotFound(f"no plot format {extension!r}: use .png or .svg")
    names = plot_names(reports.describe(record))
    if name not in names:
        there = ", ".join(names) if names else "none"
        raise NotFound(f"model {model_id!r} has no plot {name!r}; its plots: {there}")
    path = reports.path(model_id, f"{name}.{extension}")
    if not path.is_file():  # deleted meanwhile
        raise NotFound(f"model {model_id!r} has no plot {name!r} any more")
    response = send_file(path, mimetype=PLOT_MEDIA_TYPES[extension], max_age=None)
    response.headers["Cache-Control"] = "private, no-cache"
    return response
