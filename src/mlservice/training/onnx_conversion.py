"""Compiling a fitted pipeline to ONNX, and trusting it only once it matches scikit-learn.

After training, the pipeline is converted with skl2onnx and run by ONNX
Runtime (:mod:`mlservice.serving.onnx_runtime`) on the held-out split; only
when its answers equal scikit-learn's, and it is faster, does the model's
bundle carry the graph and get served by it. Otherwise the model stays on
scikit-learn and the reason is recorded, as a sentence a user can read (the
converter's own error, often a dump of whole tree arrays, goes to the log).

XGBoost and LightGBM models convert through onnxmltools' converters,
registered with skl2onnx (:func:`register_converters`) so that the whole
pipeline converts in one call. HistGradientBoosting converts with
skl2onnx's own converter, given integers where it passes Python booleans
(which onnx 1.23 refuses) by :func:`_ints_for_booleans`.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import time
from collections.abc import Callable
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

#: Longest converter message quoted in an engine reason; longer ones (skl2onnx's
#: errors can print whole tree arrays) are left to the worker's log.
MAX_QUOTED = 200

log = logging.getLogger(__name__)


class CompileError(Exception):
    """The pipeline cannot be converted, or its converted form does not agree."""


def explain(what: str, exc: BaseException) -> str:
    """A full sentence saying ``what`` failed and why, for the model's engine reason.

    The error's own message is quoted when it is one short line; otherwise only its
    type is named and the whole of it goes to the log.
    """
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else ""
    if first and len(first) <= MAX_QUOTED and first == text:
        detail = f"{type(exc).__name__}: {first.rstrip('.')}"
    else:
        log.warning("%s: %s: %s", what, type(exc).__name__, text)
        detail = f"{type(exc).__name__}; the full message is in the worker's log"
    return f"{what} ({detail}), so scikit-learn serves this model."


def _ints_for_booleans(converter: Callable[..., Any]) -> Callable[..., Any]:
    """``converter`` with Python booleans in list attributes passed as integers.

    skl2onnx 1.20's tree helper writes ``False`` into an integer list attribute
    for the leaves of HistGradientBoosting trees, which onnx 1.23 refuses.
    """

    def convert(scope: Any, operator: Any, container: Any) -> None:
        add_node = container.add_node

        def add(*args: Any, **attrs: Any) -> Any:
            for key, value in attrs.items():
                if isinstance(value, list) and any(isinstance(item, bool) for item in value):
                    attrs[key] = [int(item) for item in value]
            return add_node(*args, **attrs)

        container.add_node = add
        try:
            converter(scope, operator, container)
        finally:
            del container.add_node

    return convert


@functools.cache
def register_converters() -> None:
    """Teach skl2onnx the XGBoost and LightGBM estimators (onnxmltools' converters), and
    patch its HistGradientBoosting converters (:func:`_ints_for_booleans`). Once per process."""
    from lightgbm import LGBMClassifier, LGBMRegressor
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx import update_registered_converter
    from skl2onnx.common._registration import get_converter, get_shape_calculator
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from xgboost import XGBClassifier, XGBRegressor

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    for model, alias, convert in [
        (XGBClassifier, "XGBoostXGBClassifier", convert_xgboost),
        (LGBMClassifier, "LightGbmLGBMClassifier", convert_lightgbm),
    ]:
        update_registered_converter(
            model,
            alias,
            calculate_linear_classifier_output_shapes,
            convert,
            options=classifier_options,
        )
    for model, alias, convert in [
        (XGBRegressor, "XGBoostXGBRegressor", convert_xgboost),
        (LGBMRegressor, "LightGbmLGBMRegressor", convert_lightgbm),
    ]:
        update_registered_converter(model, alias, calculate_linear_regressor_output_shapes, convert)
    for model, options in [
        (HistGradientBoostingClassifier, {**classifier_options, "raw_scores": [True, False]}),
        (HistGradientBoostingRegressor, None),
    ]:
        alias = f"Sklearn{model.__name__}"
        update_registered_converter(
            model,
            alias,
            get_shape_calculator(alias),
            _ints_for_booleans(get_converter(alias)),
            options=options,
            overwrite=True,
        )


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


#: Estimators converted by onnxmltools, which writes version 3 of the ai.onnx.ml domain
#: (skl2onnx would otherwise ask for a later one, which onnxmltools refuses).
ONNXMLTOOLS_ESTIMATORS = {"XGBClassifier", "XGBRegressor", "LGBMClassifier", "LGBMRegressor"}


def _opsets(estimator: str) -> dict[str, int] | None:
    """The opsets to convert ``estimator``'s pipeline with (None: skl2onnx's latest)."""
    if estimator not in ONNXMLTOOLS_ESTIMATORS:
        return None
    from skl2onnx import get_latest_tested_opset_version

    return {"": get_latest_tested_opset_version(), "ai.onnx.ml": 3}


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
    register_converters()
    copied = _converted_copy(pipeline)
    options = {}
    if task == Task.CLASSIFICATION:
        # Probabilities as one float matrix rather than a list of dicts.
        options = {id(copied.steps[-1][1]): {"zipmap": False}}
    estimator = type(copied.steps[-1][1]).__name__
    try:
        model = convert_sklearn(
            copied, initial_types=inputs, options=options, target_opset=_opsets(estimator)
        )
    except Exception as exc:  # skl2onnx raises many types for "not supported"
        raise CompileError(
            explain(f"skl2onnx cannot convert this {estimator} pipeline to ONNX", exc)
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
            Engine.SCIKIT_LEARN, explain("ONNX Runtime cannot run the converted graph", exc)
        )
    if problem:
        return EngineChoice(
            Engine.SCIKIT_LEARN,
            f"ONNX Runtime disagrees with scikit-learn: {problem}, so scikit-learn serves "
            "this model.",
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
        f"compiled with {_converters(pipeline)}; on {len(held_out)} held-out rows ONNX Runtime "
        f"matched scikit-learn ({what}); one row takes {onnx_ms:.2f} ms against "
        f"{sklearn_ms:.2f} ms"
    )
    max_rows = _crossover(pipeline, compiled, held_out, onnx_ms, sklearn_ms)
    if max_rows is not None:
        reason += f"; requests over {max_rows} rows go to scikit-learn, faster at that size"
    return EngineChoice(Engine.ONNXRUNTIME, reason, onnx, max_rows)


def _converters(pipeline: Any) -> str:
    """What converted ``pipeline``: skl2onnx, with onnxmltools for XGBoost and LightGBM."""
    if type(pipeline.steps[-1][1]).__name__ in ONNXMLTOOLS_ESTIMATORS:
        return "skl2onnx and onnxmltools"
    return "skl2onnx"


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
