"""Running a compiled model: an ONNX Runtime session fed exactly like scikit-learn.

scikit-learn spends 6–15 ms on a one-row predict, almost all of it in Python
overhead; ONNX Runtime runs the same pipeline, converted by skl2onnx (see
:mod:`mlservice.training.onnx_conversion`), in well under a millisecond.

Near ties: where two classes' probabilities are within :data:`TIE_MARGIN`
(a forest whose trees split 50/50), float32 rounding inside ONNX Runtime can
break the tie the other way than scikit-learn's float64 ``argmax``. Those
rows, rare, are decided by the scikit-learn pipeline, so served classes are
exactly scikit-learn's.

Missing text values: scikit-learn's imputer sees them as NaN, which an ONNX
string tensor cannot hold. The converted graph therefore treats
:data:`MISSING_TEXT` as missing instead, and :func:`feed` writes it for
``None``/NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..store.bundles import ColumnType, SchemaColumn, Step, Task

#: What stands for a missing text value in the ONNX graph's string inputs.
MISSING_TEXT = "\x00"
#: Probabilities this close to the top one make a near tie, decided by scikit-learn.
TIE_MARGIN = 1e-5


class NumericPrep:
    """The fitted numeric branch (median imputation, standard scaling) in plain numpy.

    Bit for bit what scikit-learn's ``SimpleImputer`` and ``StandardScaler``
    compute: NaN replaced by the median, then ``(x - mean) / scale`` in float64.
    """

    def __init__(self, pipeline: Any) -> None:
        numeric = pipeline.named_steps[Step.PREPROCESS].named_transformers_.get(Step.NUMERIC)
        self.columns: list[str] = []
        if numeric is None:
            return
        columns = [
            columns
            for name, _, columns in pipeline.named_steps[Step.PREPROCESS].transformers_
            if name == Step.NUMERIC
        ][0]
        imputer, scaler = numeric.named_steps[Step.IMPUTE], numeric.named_steps[Step.SCALE]
        self.columns = list(columns)
        self.medians = np.asarray(imputer.statistics_, dtype=np.float64)
        self.means = scaler.mean_ if scaler.with_mean else None
        self.scales = scaler.scale_ if scaler.with_std else None

    def apply(self, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each numeric column imputed and scaled, as the float32 the graph takes."""
        if not self.columns:
            return {}
        # One (columns x rows) block, so the arithmetic runs once for all columns;
        # each row of it is a contiguous column for ONNX Runtime.
        values = np.array([columns[name] for name in self.columns], dtype=np.float64)
        missing = np.isnan(values)
        if missing.any():
            values = np.where(missing, self.medians[:, None], values)
        if self.means is not None:
            values -= self.means[:, None]
        if self.scales is not None:
            values /= self.scales[:, None]
        prepared = values.astype(np.float32)
        return {name: prepared[index].reshape(-1, 1) for index, name in enumerate(self.columns)}


def feed(
    columns: Mapping[str, np.ndarray], schema: list[SchemaColumn], numeric: NumericPrep
) -> dict[str, np.ndarray]:
    """ONNX inputs from model-input columns: prepared numbers, strings with missing marked."""
    inputs = numeric.apply(columns)
    for column in schema:
        if column["type"] == ColumnType.STRING:
            text = np.array(
                [
                    value if isinstance(value, str) else MISSING_TEXT
                    for value in columns[column["name"]]
                ],
                dtype=object,
            )
            inputs[column["name"]] = text.reshape(-1, 1)
    return inputs


def near_ties(probabilities: np.ndarray) -> np.ndarray:
    """Indices of rows whose two most probable classes are within :data:`TIE_MARGIN`."""
    if probabilities.shape[1] < 2:
        return np.empty(0, dtype=int)
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    return np.flatnonzero(top_two[:, 1] - top_two[:, 0] <= TIE_MARGIN)


class CompiledModel:
    """An ONNX Runtime session for one model, built once per process.

    ``pipeline`` (the scikit-learn original) decides the rare near ties.
    """

    def __init__(self, onnx: bytes, schema: list[SchemaColumn], task: str, pipeline: Any) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread per call: each Gunicorn worker already runs several requests at once.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            onnx, options, providers=["CPUExecutionProvider"]
        )
        self._schema = schema
        self._task = task
        self._pipeline = pipeline
        self._numeric = NumericPrep(pipeline)
        self.outputs = [output.name for output in self._session.get_outputs()]
        # skl2onnx renames inputs it cannot use as is ("petal width (cm)" becomes
        # "petal_width__cm_"); they keep the schema's order.
        self._input_names = {
            column["name"]: graph_input.name
            for column, graph_input in zip(schema, self._session.get_inputs(), strict=True)
        }

    def run(self, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions (class indices, or values) and, for classifiers, probabilities."""
        inputs = feed(columns, self._schema, self._numeric)
        results = self._session.run(
            None, {self._input_names[name]: values for name, values in inputs.items()}
        )
        if self._task != Task.CLASSIFICATION:
            return results[0].reshape(-1).astype(np.float64), None
        labels = results[0].reshape(-1)
        probabilities = results[1] if "probabilities" in self.outputs else None
        if probabilities is not None:
            ties = near_ties(probabilities)
            if ties.size:
                rows = pd.DataFrame(
                    {name: np.asarray(values)[ties] for name, values in columns.items()}
                )
                labels = labels.copy()
                labels[ties] = self._pipeline.predict(rows)
        return labels, probabilities
