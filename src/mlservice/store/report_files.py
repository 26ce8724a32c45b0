"""A model's training report as files: the plots and ``report.json`` listing them.

The plots are drawn by the Celery worker (:mod:`mlservice.training.reports`,
which needs matplotlib); everything that only reads or marks the files is
here, so the API answers ``GET /resource/models/{id}/report`` without
importing any plotting code. The files live beside the bundle, in
``models/<id>/report/``, and go with the model's directory when it is deleted.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .artifacts import ArtifactStore
from .records import ModelRecord, ModelSource

log = logging.getLogger(__name__)

#: The report's directory beside the bundle: plots and REPORT_FILENAME listing them.
REPORT_DIRNAME = "report"
REPORT_FILENAME = "report.json"


class ReportFiles:
    """The stored training reports of every model."""

    KIND = "models"

    def __init__(self, artifacts: ArtifactStore) -> None:
        self.artifacts = artifacts

    def path(self, model_id: str, filename: str) -> Path:
        """A file of the model's training report: a plot, or REPORT_FILENAME."""
        return self.artifacts.path(self.KIND, model_id, REPORT_DIRNAME) / filename

    def store(self, model_id: str, filename: str, data: bytes) -> None:
        """Write a file of the report (renamed into place: a reader never sees half of it)."""
        report_dir = f"{model_id}/{REPORT_DIRNAME}"  # models/<id>/report/<filename>
        with self.artifacts.writing(self.KIND, report_dir, filename) as (handle, _):
            handle.write(data)

    def store_listing(self, model_id: str, listing: dict[str, Any]) -> None:
        """Write REPORT_FILENAME: the plots, the errors, or that they are being rendered."""
        self.store(model_id, REPORT_FILENAME, json.dumps(listing).encode())

    def clear(self, model_id: str) -> None:
        """Remove the model's report before it is rendered again: no plot of an old fit stays."""
        self.path(model_id, REPORT_FILENAME).unlink(missing_ok=True)
        shutil.rmtree(self.artifacts.path(self.KIND, model_id, REPORT_DIRNAME), ignore_errors=True)

    def listing(self, model_id: str) -> dict[str, Any] | None:
        """The model's REPORT_FILENAME (its plots and rendering errors), or ``None``."""
        try:
            return dict(json.loads(self.path(model_id, REPORT_FILENAME).read_text()))
        except FileNotFoundError:
            return None

    def mark_rendering(self, model_id: str) -> None:
        """Before the model is ready: drop an earlier run's report (a run delivered again fits
        again, so no plot of another fit stays) and say the plots are on their way."""
        try:
            self.clear(model_id)
            self.store_listing(model_id, {"plots": [], "errors": [], "rendering": True})
        except Exception:
            log.exception("model %s: its report could not be prepared", model_id)

    def abandon_rendering(self, model_id: str) -> None:
        """A run delivered again after its worker died while drawing: say so instead of
        "being rendered" forever (the target column is gone with the worker)."""
        stored = self.listing(model_id)
        if stored is not None and stored.get("rendering"):
            error = "the worker stopped while drawing the plots; train the model again for them"
            try:
                self.store_listing(
                    model_id, {"plots": [], "errors": [{"plot": "*", "error": error}]}
                )
            except Exception:
                log.exception("model %s: its report could not be stored", model_id)

    def describe(self, record: ModelRecord) -> dict[str, Any]:
        """What ``GET /resource/models/{id}/report`` says: metrics, plots, errors, and why none.

        A model without stored plots says why in ``reason``.
        """
        stored = self.listing(record["id"]) or {}
        plots: list[dict[str, Any]] = stored.get("plots", [])
        answer: dict[str, Any] = {
            "model_id": record["id"],
            "task": record.get("task"),
            "target": record.get("target"),
            "classes": record.get("classes"),
            "metrics": record.get("metrics", {}),
            "warnings": record.get("warnings", []),
            "plots": plots,
            "errors": stored.get("errors", []),
        }
        if "held_out_rows" in stored:
            answer["held_out_rows"] = stored["held_out_rows"]
        if plots:
            return answer
        if record.get("source") == ModelSource.UPLOAD:
            answer["reason"] = "an uploaded bundle has no held-out rows to plot"
        elif stored.get("rendering"):
            answer["reason"] = "the plots are being rendered; retry in a few seconds"
        elif not stored:
            answer["reason"] = (
                "no report was rendered for this model (trained before reports existed)"
            )
        else:
            answer["reason"] = "every plot failed to render: see errors"
        return answer


def plot_names(report: dict[str, Any]) -> Sequence[str]:
    """The names of a report's plots, in order."""
    return [plot["name"] for plot in report["plots"]]
