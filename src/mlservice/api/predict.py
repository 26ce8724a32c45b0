"""``POST /resource/predict``: predictions from the service's default model."""

from __future__ import annotations

import os

from flask import Blueprint, jsonify

from .. import model_store, prediction
from ..app import services
from ..model_cache import ModelNotPublished
from .auth import require_token
from .errors import error_response
from .inputs import flag, json_body

bp = Blueprint("predict", __name__, url_prefix="/resource")


def predict_with(model_id: str, not_found_status: int, not_found_message: str):
    """Validate the body, predict with the cached model, answer JSON.

    Shared by ``/resource/predict`` and ``/resource/models/<id>/predict``.
    """
    probabilities = flag("probabilities")
    body = json_body()
    try:
        records = prediction.parse_records(body)
        version, bundle = services().cache.get(model_id)
        frame = prediction.records_to_frame(records, bundle.schema)
        result = prediction.predict(bundle, frame, probabilities=probabilities)
    except ModelNotPublished:
        return error_response(not_found_status, not_found_message)
    except prediction.PredictionInputError as exc:
        return error_response(exc.status, str(exc))
    response = jsonify(result)
    response.headers["X-Model-Version"] = str(version)
    response.headers["X-Served-By"] = str(os.getpid())
    return response


@bp.post("/predict")
@require_token()
def predict():
    """One record, a list of records or ``{"instances": [...]}`` → ``{"predictions": [...]}``."""
    return predict_with(model_store.DEFAULT_MODEL_ID, 424,
                        "the service is not initialised: call GET /resource/init first")
