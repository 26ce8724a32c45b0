"""``POST /resource/predict`` and the prediction path shared with per-model predict.

This is the hot path. Everything Redis knows that a prediction needs (the
token's user, the model's version and, for a user's model, its record) is
read in one pipelined round trip; the model itself comes from the worker's
cache, loaded once per version.
"""

from __future__ import annotations

import os

from flask import Blueprint, Response, jsonify

from .. import accounts
from ..errors import Conflict, NotFound, NotInitialised
from ..serving import inputs
from ..serving.cache import ModelNotPublished
from ..store import published
from ..store.records import ModelRecord, ModelStatus
from .auth import admit, bearer_claims, current_identity
from .parsing import flag, json_body
from .services import services

bp = Blueprint("predict", __name__, url_prefix="/resource")


def predict_with(model_id: str, user_model: bool) -> Response:
    """Authenticate, validate the body, predict with the cached model, answer JSON.

    ``user_model``: a model from ``/resource/models`` (its record says who may
    use it and whether it is ready), not the service's default model.
    """
    claimed = bearer_claims()
    ctx = services()
    pipe = ctx.store.pipeline(transaction=False)
    accounts.queue_access(pipe, claimed.username)
    published.queue_version(pipe, model_id)
    if user_model:
        ctx.models.catalog.queue_get(pipe, model_id)
    raw_access, raw_version, *raw_record = pipe.execute()
    admit(claimed, accounts.parse_access(raw_access))
    if user_model:
        # 404 for a model the caller may not see, 409 for one not ready.
        check_ready(model_id, ctx.models.catalog.parse(raw_record[0], model_id, current_identity()))
    probabilities = flag("probabilities")
    body = json_body()
    records = inputs.parse_records(body)
    try:
        version, predictor = ctx.cache.get(model_id, published.parse_version(raw_version))
    except ModelNotPublished:
        if user_model:
            raise NotFound(f"model {model_id!r} was deleted") from None
        raise NotInitialised(
            "the service is not initialised: call GET /resource/init first"
        ) from None
    columns = inputs.records_to_columns(records, predictor.bundle.schema)
    result = predictor.predict(columns, probabilities=probabilities)
    response = jsonify(result)
    response.headers["X-Model-Version"] = str(version)
    response.headers["X-Model-Engine"] = predictor.engine
    response.headers["X-Served-By"] = str(os.getpid())
    return response


def check_ready(model_id: str, record: ModelRecord) -> None:
    """409 for a model still queued, training or failed."""
    if record["status"] != ModelStatus.READY:
        raise Conflict(f"model {model_id!r} is {record['status']}, not ready")


@bp.post("/predict")
def predict() -> Response:
    """One record, a list of records or ``{"instances": [...]}`` → ``{"predictions": [...]}``."""
    return predict_with(published.DEFAULT_MODEL_ID, user_model=False)
