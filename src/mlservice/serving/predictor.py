"""A loaded model ready to serve: ONNX Runtime when compiled, batched scikit-learn otherwise.

One :class:`Predictor` per model version and process, built by the model
cache when the version changes, so the ONNX session and the batcher are made
once and shared by every request thread of the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..config import InferenceSettings
from ..store.bundles import Engine, ModelBundle, Task
from . import inputs, outputs
from .batching import Batcher
from .onnx_runtime import CompiledModel

log = logging.getLogger(__name__)

#: A batched call: the request's input frame, and whether it wants probabilities.
_Job = tuple[pd.DataFrame, bool]
_Output = tuple[np.ndarray, np.ndarray | None]


class Predictor:
    """Serves one bundle; :attr:`engine` says which engine answers."""

    def __init__(self, bundle: ModelBundle, settings: InferenceSettings) -> None:
        self.bundle = bundle
        self.engine = Engine.SCIKIT_LEARN
        self._compiled: CompiledModel | None = None
        if bundle.engine == Engine.ONNXRUNTIME and bundle.onnx:
            try:
                self._compiled = CompiledModel(
                    bundle.onnx, bundle.schema, bundle.task, bundle.pipeline
                )
                self.engine = Engine.ONNXRUNTIME
            except Exception as exc:  # e.g. a bundle from a newer ONNX opset
                log.warning(
                    "model served by scikit-learn: ONNX Runtime cannot load the bundle's graph: %s",
                    exc,
                )
        self.batcher: Batcher[_Job, _Output] = Batcher(
            self._run_batch, settings.batch_max_rows, settings.batch_max_wait_ms / 1000
        )

    def run(
        self, columns: dict[str, np.ndarray], probabilities: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The model's raw output: class indices (or values), and probabilities if asked.

        What every answer is built from: :func:`outputs.answer` turns it into the
        JSON answer, :func:`outputs.answer_table` into the tabular one (a CSV,
        Parquet or Arrow answer, a chunk of batch scoring's output).
        """
        outputs.check_probabilities(self.bundle, probabilities)
        inputs.check_dates(columns, self.bundle.schema)
        wants_proba = probabilities and self.bundle.task == Task.CLASSIFICATION
        rows = len(next(iter(columns.values())))
        limit = self.bundle.onnx_max_rows
        if self._compiled is not None and (limit is None or rows <= limit):
            raw, proba = self._compiled.run(columns)
        else:  # not compiled, or a batch large enough for scikit-learn to be faster
            frame = inputs.columns_to_frame(columns)
            raw, proba = self.batcher.submit((frame, wants_proba), len(frame))
        return raw, proba if wants_proba else None

    def _run_batch(self, jobs: Sequence[_Job]) -> list[_Output]:
        """One scikit-learn call for several requests' rows; each gets its own slice back."""
        frames = [frame for frame, _ in jobs]
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        pipeline = self.bundle.pipeline
        raw = pipeline.predict(frame)
        proba = pipeline.predict_proba(frame) if any(wants for _, wants in jobs) else None
        outputs, start = [], 0
        for part in frames:
            stop = start + len(part)
            outputs.append((raw[start:stop], None if proba is None else proba[start:stop]))
            start = stop
        return outputs
