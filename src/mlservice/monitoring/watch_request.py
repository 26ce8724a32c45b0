"""``PATCH /resource/models/<id>``: what may change of a model once trained.

Only whether its predictions are logged (docs/monitoring.md); the model itself
never changes (train a new one). The contract's ``ModelChange``.
"""

from __future__ import annotations

from typing import Any

from ..bodies import Body, decode


class ModelChange(Body):
    """A ``PATCH /resource/models/<id>`` body."""

    log_predictions: bool

    complaints = {"log_predictions": "must be true or false"}
    example = '{"log_predictions": true}'


def parse_model_change(body: Any) -> ModelChange:
    """The body as a :class:`ModelChange` (400 naming a field of the wrong shape)."""
    return decode(body, ModelChange)
