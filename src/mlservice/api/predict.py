"""``POST /resource/predict`` and the prediction path shared with per-model predict.

This is the hot path. Everything Redis knows that a prediction needs (the
token's user, the model's version and, for a user's model, its record) is
read in one pipelined round trip; the model itself comes from the worker's
cache, loaded once per version.
"""

from __future__ import annotations

import os

from flask import Blueprint, jsonify

from .. import model_store, prediction, users
from ..app import services
from ..catalog import NotFound
from ..model_cache import ModelNotPublished
from .auth import admit, bearer_claims, current_identity
from .errors import error_response
from .inputs import flag, json_body

bp = Blueprint("predict", __name__, url_prefix="/resource")


def predict_with(model_id: str, user_model: bool):
    """Authenticate, validate the body, predict with the cached model, answer JSON.

    ``user_model``: a model from ``/resource/models`` (its record says who may
    use it and whether it is ready), not the service's default model.
    """
    claimed, refusal = bearer_claims()
    if refusal is not None:
        return refusal
    ctx = services()
    pipe = ctx.store.pipeline(transaction=False)
    users.queue_role(pipe, claimed.username)
    model_store.queue_version(pipe, model_id)
    if user_model:
        ctx.models.catalog.queue_get(pipe, model_id)
    role, raw_version, *raw_record = pipe.execute()
    refusal = admit(claimed, users.parse_role(role))
    if refusal is not None:
        return refusal
    if user_model:
        refusal = _refuse_unready(ctx, model_id, raw_record[0])
        if refusal is not None:
            return refusal
    probabilities = flag("probabilities")
    body = json_body()
    try:
        records = prediction.parse_records(body)
        version, predictor = ctx.cache.get(model_id, model_store.parse_version(raw_version))
        columns = prediction.records_to_columns(records, predictor.bundle.schema)
        result = predictor.predict(columns, probabilities=probabilities)
    except ModelNotPublished:
        if user_model:
            return error_response(404, f"model {model_id!r} was deleted")
        return error_response(424, "the service is not initialised: call GET /resource/init first")
    except prediction.PredictionInputError as exc:
        return error_response(exc.status, str(exc))
    response = jsonify(result)
    response.headers["X-Model-Version"] = str(version)
    response.headers["X-Model-Engine"] = predictor.engine
    response.headers["X-Served-By"] = str(os.getpid())
    return response


def _refuse_unready(ctx, model_id: str, raw_record: bytes | None):
    """404 for a model the caller may not see, 409 for one not ready, else None."""
    try:
        record = ctx.models.catalog.parse(raw_record, model_id, current_identity())
    except NotFound as exc:
        return error_response(404, str(exc))
    return not_ready(model_id, record)


def not_ready(model_id: str, record: dict):
    """409 for a model still queued, training or failed; None once it is ready."""
    if record["status"] != "ready":
        return error_response(409, f"model {model_id!r} is {record['status']}, not ready")
    return None


@bp.post("/predict")
def predict():
    """One record, a list of records or ``{"instances": [...]}`` → ``{"predictions": [...]}``."""
    return predict_with(model_store.DEFAULT_MODEL_ID, user_model=False)
