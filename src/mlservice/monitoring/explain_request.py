"""An explanation request, as the API checks it and a worker reads it back.

Kept apart from :mod:`.explainers`, which imports SHAP: the API worker checks the
body (the same formats as a prediction, at most ``[monitoring]
explain_max_rows`` rows) and sends the model-input columns as JSON to the
Celery task, which turns them back into the frame the model takes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import Invalid


def check_rows(columns: dict[str, np.ndarray], limit: int) -> int:
    """The number of rows; 422 past ``limit`` (``[monitoring] explain_max_rows``)."""
    rows = len(next(iter(columns.values()))) if columns else 0
    if rows > limit:
        raise Invalid(
            f"an explanation takes at most {limit} rows ([monitoring] explain_max_rows); "
            f"this body has {rows}: send fewer rows per request"
        )
    return rows


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def columns_as_json(columns: dict[str, np.ndarray]) -> dict[str, list[Any]]:
    """Model-input columns as JSON lists (missing as None), to send to the worker."""
    return {
        name: [None if value is None or value != value else _plain(value) for value in values]
        for name, values in columns.items()
    }


def input_frame(columns: dict[str, list[Any]], schema: list[Any]) -> pd.DataFrame:
    """The JSON columns back as model input: numbers as float64, text as objects."""
    frame: dict[str, Any] = {}
    for column in schema:
        values = columns[column["name"]]
        if column["type"] == "number":
            frame[column["name"]] = np.array(
                [np.nan if v is None else v for v in values], dtype=np.float64
            )
        else:
            frame[column["name"]] = pd.Series(values, dtype=object)
    return pd.DataFrame(frame)
