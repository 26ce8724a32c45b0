"""Compiling a fitted pipeline to ONNX, and trusting it only once it matches scikit-learn.

After training, the pipeline is converted with skl2onnx and run by ONNX
Runtime (:mod:`mlservice.serving.onnx_runtime`) on the held-out split; only
when its answers equal scikit-learn's, and it is faster, does the model's
bundle carry the graph and get served by it. Otherwise the model stays on
scikit-learn and the reason is recorded.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..serving.onnx_runtime import MISSING_TEXT, CompiledModel
from ..store.bundles import ColumnType, Engine, ModelBundle, SchemaColumn, Step, Task
from .fitting import FittedModel

#: Largest allowed difference between ONNX Runtime's and scikit-learn's probabilities.
PROBABILITY_TOLERANCE = 1e-5
#: Regression values: relative tolerance (float32 inside ONNX against float64).
RELATIVE_TOLERANCE = 1e-4

#: Longest engine reason kept (skl2onnx's errors can print whole tree arrays).
MAX_REASON = 300


class CompileError(Exception):
    """The pipeline cannot be converted, or its converted form does not agree."""


def _short(text: str) -> str:
    """The first line of an error, cut to :data:`MAX_REASON` characters."""
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= MAX_REASON else line[: MAX_REASON - 1] + "…"


@dataclass(frozen=True)
class EngineChoice:
    """Which engine should serve a model, and why; ``onnx`` holds the graph when compiled."""

    name: Engine
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
    preprocess = pipeline.named_steps[Step.PREPROCESS]
    text = preprocess.named_transformers_.get(Step.CATEGORICAL)
    if text is not None:
        text.named_steps[Step.IMPUTE].missing_values = MISSING_TEXT
    preprocess.transformers_ = [
        (name, "passthrough" if name == Step.NUMERIC else transformer, columns)
        for name, transformer, columns in preprocess.transformers_
    ]
    return pipeline


def convert(pipeline: Any, schema: list[SchemaColumn], task: str) -> bytes:
    """The ONNX graph of a fitted pipeline (one input per column), or :class:`CompileError`."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    own = [c for c in schema if c["type"] == ColumnType.DATETIME or c.get("role") == "text"]
    if own:
        column = own[0]
        what = (
            "a date column, whose features (year, month, day of week, ordinal) are computed by "
            "a step of this service's own"
            if column["type"] == ColumnType.DATETIME
            else "a free-text column, whose TF-IDF step ONNX conversion does not take here"
        )
        raise CompileError(
            f"not compiled: column {column['name']!r} is {what}, which has no ONNX converter; "
            "scikit-learn serves the model"
        )
    capped = [column["name"] for column in schema if column.get("max_categories")]
    if capped:
        raise CompileError(
            f"not compiled: column {capped[0]!r} has so many values that its rarest are "
            "grouped as one category, which skl2onnx's one-hot encoder does not convert; "
            "scikit-learn serves the model"
        )
    inputs = [
        (
            column["name"],
            FloatTensorType([None, 1])
            if column["type"] == ColumnType.NUMBER
            else StringTensorType([None, 1]),
        )
        for column in schema
    ]
    copied = _converted_copy(pipeline)
    options = {}
    if task == Task.CLASSIFICATION:
        # Probabilities as one float matrix rather than a list of dicts.
        options = {id(copied.steps[-1][1]): {"zipmap": False}}
    try:
        model = convert_sklearn(copied, initial_types=inputs, options=options)
    except Exception as exc:  # skl2onnx raises many types for "not supported"
        raise CompileError(
            f"skl2onnx cannot convert it: {type(exc).__name__}: {_short(str(exc))}"
        ) from None
    return model.SerializeToString()


def _disagreement(
    pipeline: Any, compiled: CompiledModel, frame: pd.DataFrame, task: str
) -> str | None:
    """How ONNX Runtime's answers differ from scikit-learn's on ``frame``, or None."""
    columns = {name: frame[name].to_numpy() for name in frame.columns}
    predicted, probabilities = compiled.run(columns)
    expected = pipeline.predict(frame)
    rows = len(frame)
    if task != Task.CLASSIFICATION:
        scale = max(1.0, float(np.max(np.abs(expected))))
        if not np.allclose(
            predicted, expected, rtol=RELATIVE_TOLERANCE, atol=RELATIVE_TOLERANCE * scale
        ):
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


def compile_pipeline(
    pipeline: Any, schema: list[SchemaColumn], task: str, held_out: pd.DataFrame
) -> EngineChoice:
    """Convert, then check on the held-out rows; the engine that should serve the model."""
    try:
        onnx = convert(pipeline, schema, task)
        compiled = CompiledModel(onnx, schema, task, pipeline)
        problem = _disagreement(pipeline, compiled, held_out, task)
    except CompileError as exc:
        return EngineChoice(Engine.SCIKIT_LEARN, str(exc))
    except Exception as exc:  # a graph ONNX Runtime refuses to load or run
        return EngineChoice(
            Engine.SCIKIT_LEARN,
            f"ONNX Runtime cannot run the converted graph: "
            f"{type(exc).__name__}: {_short(str(exc))}",
        )
    if problem:
        return EngineChoice(
            Engine.SCIKIT_LEARN, f"ONNX Runtime disagrees with scikit-learn: {problem}"
        )
    onnx_ms, sklearn_ms = _latency(pipeline, compiled, held_out.iloc[:1], repeats=15)
    if onnx_ms >= sklearn_ms:
        # e.g. nearest neighbours: ONNX compares against every training row, scikit-learn
        # uses a tree.
        return EngineChoice(
            Engine.SCIKIT_LEARN,
            f"ONNX Runtime matched scikit-learn but is slower for one "
            f"row ({onnx_ms:.2f} ms against {sklearn_ms:.2f} ms)",
        )
    if task != Task.CLASSIFICATION:
        what = "values within a relative 1e-4"
    elif hasattr(pipeline, "predict_proba"):
        what = "classes equal, probabilities within 1e-5"
    else:
        what = "classes equal"
    reason = (
        f"compiled with skl2onnx; on {len(held_out)} held-out rows ONNX Runtime matched "
        f"scikit-learn ({what}); one row takes {onnx_ms:.2f} ms against {sklearn_ms:.2f} ms"
    )
    max_rows = _crossover(pipeline, compiled, held_out, onnx_ms, sklearn_ms)
    if max_rows is not None:
        reason += f"; requests over {max_rows} rows go to scikit-learn, faster at that size"
    return EngineChoice(Engine.ONNXRUNTIME, reason, onnx, max_rows)


def _crossover(
    pipeline: Any,
    compiled: CompiledModel,
    held_out: pd.DataFrame,
    onnx_ms: float,
    sklearn_ms: float,
) -> int | None:
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


def _latency(
    pipeline: Any, compiled: CompiledModel, rows: pd.DataFrame, repeats: int
) -> tuple[float, float]:
    """Best-of-``repeats`` milliseconds to predict ``rows``: ONNX Runtime, then scikit-learn.

    One untimed warm-up each, then the two engines take turns, so a burst of
    load from elsewhere on the machine slows both rather than only one.
    """
    columns = {name: rows[name].to_numpy() for name in rows.columns}
    runs = (lambda: compiled.run(columns), lambda: pipeline.predict(rows))
    for run in runs:
        run()
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for engine, run in enumerate(runs):
            started = time.perf_counter()
            run()
            best[engine] = min(best[engine], time.perf_counter() - started)
    return best[0] * 1000, best[1] * 1000


def compile_onnx(fitted: FittedModel) -> ModelBundle:
    """A copy of the bundle with its ONNX graph, if it converts and agrees on the held-out rows.

    The bundle's ``engine`` and ``engine_reason`` say which engine will serve it and why.
    """
    bundle = fitted.bundle
    choice = compile_pipeline(bundle.pipeline, bundle.schema, bundle.task, fitted.held_out)
    return dataclasses.replace(
        bundle,
        onnx=choice.onnx,
        engine=choice.name.value,
        engine_reason=choice.reason,
        onnx_max_rows=choice.max_rows,
    )
