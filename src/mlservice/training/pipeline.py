"""The pipeline a model is: preprocessing per column role, then the estimator.

Which columns go in, and how, follows their roles (:mod:`mlservice.store.column_roles`:
the data set profile's, or the training request's ``"columns"``), see ``docs/tables.md``:

* ``numeric``: median imputation, standard scaling;
* ``categorical``: most-frequent imputation, a one-hot encoder that ignores
  categories never seen in training; a column of more than
  :data:`MAX_CATEGORIES` values keeps the most frequent and groups the rest
  (``max_categories``), with a warning;
* ``datetime``: year, month, day of week and ordinal
  (:class:`mlservice.table_features.DateFeatures`), then as numbers;
* ``text``: TF-IDF over a vocabulary of the :data:`TEXT_VOCABULARY` most
  frequent words, one block per column;
* ``id``, ``constant`` and ``ignore``: left out, with a warning.

Without roles (the default model, data sets profiled before roles) numbers
are numeric and everything else categorical, as before. Everything happens
inside the pipeline, so prediction takes the raw columns. The step names are
:class:`~mlservice.store.bundles.Step`: serving and ONNX conversion look the
fitted steps up by them. Names and types go into the pipeline as plain
strings, so a pickled bundle does not depend on this package's enums.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ..store.bundles import ColumnType, SchemaColumn, Step, TrainingWarning
from ..store.column_roles import Role
from ..store.records import ColumnProfile
from ..table_features import DateFeatures, TextColumn, guess_format

#: A categorical column with more distinct values keeps this many (the rarest grouped).
MAX_CATEGORIES = 50
#: A free-text column's TF-IDF vocabulary: at most this many words.
TEXT_VOCABULARY = 300
#: A word, for TF-IDF: letters and digits, one or more (scikit-learn's default wants two).
WORD = r"(?u)\b\w+\b"
#: The role a training request gives a column it wants left out.
IGNORE = "ignore"


@dataclass
class ColumnPlan:
    """The model's input schema, and what was said about the columns left out or changed."""

    schema: list[SchemaColumn]
    warnings: list[TrainingWarning] = field(default_factory=list)


def profile_roles(profile: Sequence[ColumnProfile]) -> tuple[dict[str, str], dict[str, str]]:
    """The roles a data set's profile gives its columns, and their reasons (data sets
    profiled before roles: none, so every column goes by its type)."""
    roles = {column["name"]: column["role"] for column in profile if "role" in column}
    reasons = {
        column["name"]: column["role_evidence"]["reason"]
        for column in profile
        if "role_evidence" in column
    }
    return roles, reasons


def is_numeric(series: pd.Series) -> bool:
    """Numbers are scaled; everything else (text, booleans, categories) is one-hot encoded."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def input_schema(frame: pd.DataFrame, features: Sequence[str]) -> list[SchemaColumn]:
    """Column names, types and (for text columns) the categories seen in training, by type
    alone (no roles)."""
    return plan_columns(frame, features).schema


def plan_columns(
    frame: pd.DataFrame,
    features: Sequence[str],
    roles: Mapping[str, str] | None = None,
    reasons: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> ColumnPlan:
    """Which features go in and as what: a request's ``overrides`` first, then the profile's
    ``roles`` (with their ``reasons``), then the column's type."""
    plan = ColumnPlan([])
    for name in features:
        column = frame[name]
        asked = (overrides or {}).get(name)
        role = asked or (roles or {}).get(name)
        if role is None:
            role = Role.NUMERIC if is_numeric(column) else Role.CATEGORICAL
        why = 'the training request\'s "columns" says so' if asked else (reasons or {}).get(name)
        if role in (IGNORE, Role.ID, Role.CONSTANT):
            plan.warnings.append(_left_out(name, role, why))
        elif role == Role.DATETIME:
            plan.schema.append(
                {
                    "name": name,
                    "type": ColumnType.DATETIME.value,
                    "role": Role.DATETIME.value,
                    "format": guess_format(column.dropna().astype(str).head(1000)),
                }
            )
        elif role == Role.NUMERIC:
            plan.schema.append(
                {"name": name, "type": ColumnType.NUMBER.value, "role": Role.NUMERIC.value}
            )
            if not is_numeric(column):
                _check_numbers(name, column, plan)
        elif role == Role.TEXT:
            plan.schema.append(
                {"name": name, "type": ColumnType.STRING.value, "role": Role.TEXT.value}
            )
        else:
            plan.schema.append(_categorical(name, column, plan))
    for entry in plan.schema:  # a role its type implies is not repeated (schemas as before)
        if entry["role"] == _role_of_type(entry["type"]):
            del entry["role"]
    return plan


def _left_out(name: str, role: str, why: str | None) -> TrainingWarning:
    """The warning for a column the model does without."""
    what = {IGNORE: "ignored", Role.ID: "an identifier", Role.CONSTANT: "constant"}[role]
    message = f"column {name!r} is left out: it is {what}"
    if why:
        message += f" ({why})"
    if role != IGNORE:
        message += (
            f'; to use it, send "columns": {{"{name}": "categorical"}} (or "numeric", '
            '"datetime", "text") with the training request'
        )
    return {"kind": "column_left_out", "message": message, "column": name}


def _check_numbers(name: str, column: pd.Series, plan: ColumnPlan) -> None:
    """Warn of the values of a column given the role ``numeric`` that are not numbers."""
    present = column.notna()
    numbers = pd.to_numeric(column[present], errors="coerce")
    bad = int(numbers.isna().sum())
    if bad:
        plan.warnings.append(
            {
                "kind": "not_numbers",
                "message": (
                    f"column {name!r} is numeric by request, but {bad} of its "
                    f"{int(present.sum())} values are not numbers: they are taken as missing"
                ),
                "column": name,
            }
        )


def _categorical(name: str, column: pd.Series, plan: ColumnPlan) -> SchemaColumn:
    """A categorical column's schema entry; a capped one's warning."""
    categories = sorted({str(value) for value in column.dropna().unique()})
    entry: SchemaColumn = {
        "name": name,
        "type": ColumnType.STRING.value,
        "categories": categories,
        "role": Role.CATEGORICAL.value,
    }
    if len(categories) > MAX_CATEGORIES:
        entry["max_categories"] = MAX_CATEGORIES
        plan.warnings.append(
            {
                "kind": "categories_grouped",
                "message": (
                    f"column {name!r} has {len(categories)} distinct values: the "
                    f"{MAX_CATEGORIES - 1} most frequent are encoded and the rest grouped as "
                    "one 'infrequent' category"
                ),
                "column": name,
            }
        )
    return entry


def _role(column: SchemaColumn) -> str:
    """A schema column's role (absent: the one its type implies)."""
    return column.get("role") or _role_of_type(column["type"])


def _role_of_type(kind: str) -> str:
    """The role a schema type implies: numbers numeric, dates datetime, text categorical."""
    if kind == ColumnType.NUMBER:
        return Role.NUMERIC
    return Role.DATETIME if kind == ColumnType.DATETIME else Role.CATEGORICAL


def build_pipeline(schema: list[SchemaColumn], estimator: Any) -> Pipeline:
    """Imputation, encoding and scaling per column role, then the estimator."""
    by_role: dict[str, list[SchemaColumn]] = {}
    for column in schema:
        by_role.setdefault(_role(column), []).append(column)
    transformers: list[tuple[str, Any, list[str]]] = []
    numeric = [column["name"] for column in by_role.get(Role.NUMERIC, [])]
    if numeric:
        transformers.append((Step.NUMERIC.value, _numeric_branch(), numeric))
    categorical = by_role.get(Role.CATEGORICAL, [])
    if categorical:
        cap = max((column.get("max_categories", 0) for column in categorical), default=0)
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        if cap:
            encoder.set_params(max_categories=cap, handle_unknown="infrequent_if_exist")
        branch = Pipeline(
            [
                (Step.IMPUTE.value, SimpleImputer(strategy="most_frequent")),
                (Step.ENCODE.value, encoder),
            ]
        )
        transformers.append(
            (Step.CATEGORICAL.value, branch, [column["name"] for column in categorical])
        )
    dates = [column["name"] for column in by_role.get(Role.DATETIME, [])]
    if dates:
        branch = Pipeline([(Step.DATE_FEATURES.value, DateFeatures()), *_numeric_branch().steps])
        transformers.append((Step.DATETIME.value, branch, dates))
    for column in by_role.get(Role.TEXT, []):
        branch = Pipeline(
            [
                (Step.TEXT_COLUMN.value, TextColumn()),
                (
                    Step.TFIDF.value,
                    TfidfVectorizer(max_features=TEXT_VOCABULARY, token_pattern=WORD),
                ),
            ]
        )
        transformers.append((f"{Step.TEXT.value}:{column['name']}", branch, [column["name"]]))
    preprocess = ColumnTransformer(
        transformers, remainder="drop", verbose_feature_names_out=False, sparse_threshold=0.0
    )
    return Pipeline([(Step.PREPROCESS.value, preprocess), (Step.ESTIMATOR.value, estimator)])


def _numeric_branch() -> Pipeline:
    """Median imputation and standard scaling (numbers, and the features of dates)."""
    return Pipeline(
        [
            (Step.IMPUTE.value, SimpleImputer(strategy="median")),
            (Step.SCALE.value, StandardScaler()),
        ]
    )


def as_model_input(frame: pd.DataFrame, schema: list[SchemaColumn]) -> pd.DataFrame:
    """Columns in schema order: numbers as float64, text as Python strings, dates as their
    raw values (missing: NaN)."""
    columns = {}
    for column in schema:
        values = frame[column["name"]]
        if column["type"] == ColumnType.NUMBER:
            columns[column["name"]] = pd.to_numeric(values, errors="coerce").astype("float64")
        elif column["type"] == ColumnType.DATETIME:
            raw = values.astype(object)
            columns[column["name"]] = raw.where(raw.notna(), np.nan).astype(object)
        else:
            text = values.astype(object)
            columns[column["name"]] = text.where(text.isna(), text.astype(str)).astype(object)
    return pd.DataFrame(columns, index=frame.index)
