"""Reference answers the tests compare the service with: plain scikit-learn, plain calls.

Functions only tests need live here, not in the service's modules.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlservice import security
from mlservice.serving import inputs, outputs
from mlservice.serving.predictor import Predictor
from mlservice.store.bundles import ModelBundle, SchemaColumn, Task


def sklearn_answer(
    bundle: ModelBundle, frame: pd.DataFrame, probabilities: bool = False
) -> dict[str, Any]:
    """scikit-learn's predictions, one call, nothing batched or compiled: the JSON answer."""
    outputs.check_probabilities(bundle, probabilities)
    proba = (
        bundle.pipeline.predict_proba(frame)
        if probabilities and bundle.task == Task.CLASSIFICATION
        else None
    )
    return outputs.answer(bundle, bundle.pipeline.predict(frame), proba)


def records_to_frame(records: list[dict[str, Any]], schema: list[SchemaColumn]) -> pd.DataFrame:
    """Records checked against the input schema, as the model's input frame."""
    return inputs.columns_to_frame(inputs.records_to_columns(records, schema))


def served_answer(
    predictor: Predictor, columns: dict[str, np.ndarray], probabilities: bool = False
) -> dict[str, Any]:
    """The JSON answer the predictor gives for checked input columns."""
    raw, proba = predictor.run(columns, probabilities)
    return outputs.answer(predictor.bundle, raw, proba)


def verify_token(token: str, secret: str) -> security.Identity:
    """A token checked as the API checks it (signature, algorithm, expiry)."""
    return security.VerifiedTokens(secret).verify(token)
