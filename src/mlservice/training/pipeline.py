"""The pipeline a model is: preprocessing per column type, then the estimator.

Numeric columns get median imputation and standard scaling; every other
column gets most-frequent imputation and a one-hot encoder that ignores
categories never seen in training. The step names are
:class:`~mlservice.store.bundles.Step`: serving and ONNX conversion look the
fitted steps up by them. Names and types go into the pipeline as plain
strings, so a pickled bundle does not depend on this package's enums.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ..store.bundles import ColumnType, SchemaColumn, Step


def is_numeric(series: pd.Series) -> bool:
    """Numbers are scaled; everything else (text, booleans, categories) is one-hot encoded."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def input_schema(frame: pd.DataFrame, features: Sequence[str]) -> list[SchemaColumn]:
    """Column names, types and (for text columns) the categories seen in training."""
    schema: list[SchemaColumn] = []
    for name in features:
        column = frame[name]
        if is_numeric(column):
            schema.append({"name": name, "type": ColumnType.NUMBER.value})
        else:
            categories = sorted(str(value) for value in column.dropna().unique())
            schema.append({"name": name, "type": ColumnType.STRING.value, "categories": categories})
    return schema


def build_pipeline(schema: list[SchemaColumn], estimator: Any) -> Pipeline:
    """Imputation, encoding and scaling per column type, then the estimator."""
    numeric = [column["name"] for column in schema if column["type"] == ColumnType.NUMBER]
    text = [column["name"] for column in schema if column["type"] == ColumnType.STRING]
    transformers: list[tuple[str, Pipeline, list[str]]] = []
    if numeric:
        branch = Pipeline(
            [
                (Step.IMPUTE.value, SimpleImputer(strategy="median")),
                (Step.SCALE.value, StandardScaler()),
            ]
        )
        transformers.append((Step.NUMERIC.value, branch, numeric))
    if text:
        branch = Pipeline(
            [
                (Step.IMPUTE.value, SimpleImputer(strategy="most_frequent")),
                (Step.ENCODE.value, OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        transformers.append((Step.CATEGORICAL.value, branch, text))
    preprocess = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    return Pipeline([(Step.PREPROCESS.value, preprocess), (Step.ESTIMATOR.value, estimator)])


def as_model_input(frame: pd.DataFrame, schema: list[SchemaColumn]) -> pd.DataFrame:
    """Columns in schema order, text columns as Python strings (missing as NaN)."""
    columns = {}
    for column in schema:
        values = frame[column["name"]]
        if column["type"] == ColumnType.NUMBER:
            columns[column["name"]] = pd.to_numeric(values).astype("float64")
        else:
            text = values.astype(object)
            columns[column["name"]] = text.where(text.isna(), text.astype(str)).astype(object)
    return pd.DataFrame(columns, index=frame.index)
