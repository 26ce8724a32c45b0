"""Compiled inference: fitted pipelines converted to ONNX and run by ONNX Runtime.

scikit-learn spends 6–15 ms on a one-row predict, almost all of it in Python
overhead; ONNX Runtime runs the same pipeline, converted by skl2onnx, in well
under a millisecond. A converted pipeline is only trusted once its answers
equal scikit-learn's on the held-out split (:func:`compile_pipeline`);
otherwise the model stays on scikit-learn and the reason is recorded.

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

import copy
import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .estimators import CLASSIFICATION

#: What stands for a missing text value in the ONNX graph's string inputs.
MISSING_TEXT = "\x00"
#: Largest allowed difference between ONNX Runtime's and scikit-learn's probabilities.
PROBABILITY_TOLERANCE = 1e-5
#: Probabilities this close to the top one make a near tie, decided by scikit-learn.
TIE_MARGIN = 1e-5
#: Regression values: relative tolerance (float32 inside ONNX against float64).
RELATIVE_TOLERANCE = 1e-4

#: Longest engine reason kept (skl2onnx's errors can print whole tree arrays).
MAX_REASON = 300

ONNXRUNTIME = "onnxruntime"
SCIKIT_LEARN = "scikit-learn"


class CompileError(Exception):
    """The pipeline cannot be converted, or its converted form does not agree."""


def _short(text: str) -> str:
    """The first line of an error, cut to :data:`MAX_REASON` characters."""
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= MAX_REASON else line[:MAX_REASON - 1] + "…"


@dataclass(frozen=True)
class Engine:
    """Which engine serves a model, and why; ``onnx`` holds the graph when compiled."""

    name: str
    reason: str
    onnx: bytes | None = None
    #: Larger requests go to scikit-learn, faster there (None: no limit).
    max_rows: int | None = None


def _converted_copy(pipeline: Any) -> Any:
    """The copy of the pipeline that goes into the ONNX graph.

    * Its text imputer treats :data:`MISSING_TEXT` (not NaN) as missing:
      skl2onnx converts text imputers only when their marker is a string.
    * Its numeric branch passes values through: :class:`NumericPrep` imputes
      and scales them in float64 exactly as scikit-learn does, before the
      cast to float32. Scaling inside the graph would run in float32, and a
      value one rounding step from a tree's threshold could then take the
      other branch than in scikit-learn (which casts to float32 *after*
      scaling).
    """
    pipeline = copy.deepcopy(pipeline)
    preprocess = pipeline.named_steps["preprocess"]
    text = preprocess.named_transformers_.get("categorical")
    if text is not None:
        text.named_steps["impute"].missing_values = MISSING_TEXT
    preprocess.transformers_ = [
        (name, "passthrough" if name == "numeric" else transformer, columns)
        for name, transformer, columns in preprocess.transformers_]
    return pipeline


class NumericPrep:
    """The fitted numeric branch (median imputation, standard scaling) in plain numpy.

    Bit for bit what scikit-learn's ``SimpleImputer`` and ``StandardScaler``
    compute: NaN replaced by the median, then ``(x - mean) / scale`` in float64.
    """

    def __init__(self, pipeline: Any) -> None:
        numeric = pipeline.named_steps["preprocess"].named_transformers_.get("numeric")
        self.columns: list[str] = []
        if numeric is None:
            return
        columns = [columns for name, _, columns in
                   pipeline.named_steps["preprocess"].transformers_ if name == "numeric"][0]
        imputer, scaler = numeric.named_steps["impute"], numeric.named_steps["scale"]
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


def convert(pipeline: Any, schema: list[dict[str, Any]], task: str) -> bytes:
    """The ONNX graph of a fitted pipeline (one input per column), or :class:`CompileError`."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    inputs = [(column["name"], FloatTensorType([None, 1]) if column["type"] == "number"
               else StringTensorType([None, 1])) for column in schema]
    copied = _converted_copy(pipeline)
    options = {}
    if task == CLASSIFICATION:
        # Probabilities as one float matrix rather than a list of dicts.
        options = {id(copied.steps[-1][1]): {"zipmap": False}}
    try:
        model = convert_sklearn(copied, initial_types=inputs, options=options)
    except Exception as exc:  # skl2onnx raises many types for "not supported"
        raise CompileError(f"skl2onnx cannot convert it: {type(exc).__name__}: "
                           f"{_short(str(exc))}") from None
    return model.SerializeToString()


def feed(columns: Mapping[str, np.ndarray], schema: list[dict[str, Any]],
         numeric: NumericPrep) -> dict[str, np.ndarray]:
    """ONNX inputs from model-input columns: prepared numbers, strings with missing marked."""
    inputs = numeric.apply(columns)
    for column in schema:
        if column["type"] == "string":
            text = np.array([value if isinstance(value, str) else MISSING_TEXT
                             for value in columns[column["name"]]], dtype=object)
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

    def __init__(self, onnx: bytes, schema: list[dict[str, Any]], task: str,
                 pipeline: Any) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread per call: each Gunicorn worker already runs several requests at once.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            onnx, options, providers=["CPUExecutionProvider"])
        self._schema = schema
        self._task = task
        self._pipeline = pipeline
        self._numeric = NumericPrep(pipeline)
        self.outputs = [output.name for output in self._session.get_outputs()]
        # skl2onnx renames inputs it cannot use as is ("petal width (cm)" becomes
        # "petal_width__cm_"); they keep the schema's order.
        self._input_names = {column["name"]: graph_input.name for column, graph_input
                             in zip(schema, self._session.get_inputs(), strict=True)}

    def run(self, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions (class indices, or values) and, for classifiers, probabilities."""
        inputs = feed(columns, self._schema, self._numeric)
        results = self._session.run(None, {self._input_names[name]: values
                                           for name, values in inputs.items()})
        if self._task != CLASSIFICATION:
            return results[0].reshape(-1).astype(np.float64), None
        labels = results[0].reshape(-1)
        probabilities = results[1] if "probabilities" in self.outputs else None
        if probabilities is not None:
            ties = near_ties(probabilities)
            if ties.size:
                rows = pd.DataFrame({name: np.asarray(values)[ties]
                                     for name, values in columns.items()})
                labels = labels.copy()
                labels[ties] = self._pipeline.predict(rows)
        return labels, probabilities


def _disagreement(pipeline: Any, compiled: CompiledModel, frame: pd.DataFrame,
                  task: str) -> str | None:
    """How ONNX Runtime's answers differ from scikit-learn's on ``frame``, or None."""
    columns = {name: frame[name].to_numpy() for name in frame.columns}
    predicted, probabilities = compiled.run(columns)
    expected = pipeline.predict(frame)
    rows = len(frame)
    if task != CLASSIFICATION:
        scale = max(1.0, float(np.max(np.abs(expected))))
        if not np.allclose(predicted, expected, rtol=RELATIVE_TOLERANCE,
                           atol=RELATIVE_TOLERANCE * scale):
            worst = float(np.max(np.abs(predicted - expected)))
            return f"values differ by up to {worst:.3g} on the {rows} held-out rows"
        return None
    differing = int(np.sum(predicted != expected))
    if differing:
        return f"{differing} of {rows} held-out predictions differ"
    if hasattr(pipeline, "predict_proba"):
        if probabilities is None:
            return "the ONNX graph gives no probabilities"
        worst = float(np.max(np.abs(probabilities - pipeline.predict_proba(frame))))
        if worst > PROBABILITY_TOLERANCE:
            return f"probabilities differ by up to {worst:.3g} on the {rows} held-out rows"
    return None


def compile_pipeline(pipeline: Any, schema: list[dict[str, Any]], task: str,
                     held_out: pd.DataFrame) -> Engine:
    """Convert, then check on the held-out rows; the engine that should serve the model."""
    try:
        onnx = convert(pipeline, schema, task)
        compiled = CompiledModel(onnx, schema, task, pipeline)
        problem = _disagreement(pipeline, compiled, held_out, task)
    except CompileError as exc:
        return Engine(SCIKIT_LEARN, str(exc))
    except Exception as exc:  # a graph ONNX Runtime refuses to load or run
        return Engine(SCIKIT_LEARN, f"ONNX Runtime cannot run the converted graph: "
                                    f"{type(exc).__name__}: {_short(str(exc))}")
    if problem:
        return Engine(SCIKIT_LEARN, f"ONNX Runtime disagrees with scikit-learn: {problem}")
    onnx_ms, sklearn_ms = _latency(pipeline, compiled, held_out.iloc[:1], repeats=5)
    if onnx_ms >= sklearn_ms:
        # e.g. nearest neighbours: ONNX compares against every training row, scikit-learn uses a tree.
        return Engine(SCIKIT_LEARN, f"ONNX Runtime matched scikit-learn but is slower for one "
                                    f"row ({onnx_ms:.2f} ms against {sklearn_ms:.2f} ms)")
    if task != CLASSIFICATION:
        what = "values within a relative 1e-4"
    elif hasattr(pipeline, "predict_proba"):
        what = "classes equal, probabilities within 1e-5"
    else:
        what = "classes equal"
    reason = (f"compiled with skl2onnx; on {len(held_out)} held-out rows ONNX Runtime matched "
              f"scikit-learn ({what}); one row takes {onnx_ms:.2f} ms against {sklearn_ms:.2f} ms")
    max_rows = _crossover(pipeline, compiled, held_out, onnx_ms, sklearn_ms)
    if max_rows is not None:
        reason += f"; requests over {max_rows} rows go to scikit-learn, faster at that size"
    return Engine(ONNXRUNTIME, reason, onnx, max_rows)


def _crossover(pipeline: Any, compiled: CompiledModel, held_out: pd.DataFrame,
               onnx_ms: float, sklearn_ms: float) -> int | None:
    """The request size above which scikit-learn is faster, or None if ONNX always wins.

    Tree ensembles run one row at a time in ONNX Runtime's single thread, so
    per row they can cost more than scikit-learn's; with costs a + b x rows
    measured at one row and at the held-out size, the lines cross at one size.
    """
    rows = len(held_out)
    if rows < 2:
        return None
    onnx_all, sklearn_all = _latency(pipeline, compiled, held_out, repeats=1)
    onnx_per_row = (onnx_all - onnx_ms) / (rows - 1)
    sklearn_per_row = (sklearn_all - sklearn_ms) / (rows - 1)
    if onnx_per_row <= sklearn_per_row:
        return None
    return max(1, int((sklearn_ms - onnx_ms) / (onnx_per_row - sklearn_per_row)))


def _latency(pipeline: Any, compiled: CompiledModel, rows: pd.DataFrame,
             repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` milliseconds to predict ``rows``: ONNX Runtime, then scikit-learn."""
    columns = {name: rows[name].to_numpy() for name in rows.columns}
    timings = []
    for run in (lambda: compiled.run(columns), lambda: pipeline.predict(rows)):
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - started)
        timings.append(best * 1000)
    return timings[0], timings[1]
