"""``GET /resource/estimators``: what ``POST /resource/models`` accepts."""

from __future__ import annotations

import functools
from typing import Any

from flask import Blueprint, Response, jsonify

from ..training import allowed_estimators
from .auth import require_token

bp = Blueprint("estimators", __name__, url_prefix="/resource/estimators")


@functools.cache
def _described() -> list[dict[str, Any]]:
    return allowed_estimators.describe_all()


@bp.get("")
@require_token()
def list_estimators() -> Response:
    """Every supported classifier and regressor with its parameters and defaults."""
    return jsonify(estimators=_described())
