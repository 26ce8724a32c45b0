"""Watching a model in production (docs/monitoring.md): its prediction log, drift and
explanations, under ``/resource/models/<id>``.

* ``PATCH /resource/models/<id>`` ``{"log_predictions": true}`` turns the log on
  (every API worker sees it on its next request: the record is a tracked key);
* ``GET .../drift[?window=N]`` compares the newest rows with the training profile,
  here, as the work is bounded (:mod:`mlservice.monitoring.monitor`);
* ``POST .../prediction-log/export`` makes a data set of the log, as a Celery job;
* ``POST .../explain`` checks the rows here, then waits (``[monitoring]
  explain_wait_seconds``) for a Celery worker to explain them: SHAP never loads in
  an API worker. Past the wait: 202 and the task to follow.
"""

from __future__ import annotations

import time
from typing import Any, cast

from celery.result import AsyncResult
from flask import Blueprint, Response, jsonify, request

from .. import task_status
from ..celery_app import TaskName
from ..errors import BadRequest, Conflict, ServiceError
from ..monitoring import explain_request
from ..monitoring.watch_request import parse_model_change
from ..serving import formats
from ..serving.cache import ModelNotPublished
from ..serving.predictor import Predictor
from ..store.catalog import Catalog
from ..store.records import ModelRecord
from .auth import current_identity, require_token
from .parsing import body_bytes, json_body, predict_media_types
from .predict import check_ready
from .services import services
from .tasks import accepted

bp = Blueprint("model_monitoring", __name__, url_prefix="/resource/models")


#: Seconds between two looks at an explanation's task.
_POLL_SECONDS = 0.02


def _ready(model_id: str) -> tuple[ModelRecord, int, Predictor]:
    """The caller's ready model, its version and its predictor (404, 409 if not)."""
    ctx = services()
    record = ctx.models.catalog.get(model_id, current_identity())
    check_ready(model_id, record)
    try:
        version, predictor = ctx.cache.get(model_id, ctx.cache.current_version(model_id))
    except ModelNotPublished:
        raise Conflict(f"model {model_id!r} was deleted") from None
    return record, version, predictor


@bp.patch("/<hexid:model_id>")
@require_token()
def change_model(model_id: str) -> Response:
    """Turn the model's prediction log on or off → the record."""
    ctx = services()
    ctx.models.catalog.get(model_id, current_identity())  # 404 for one the caller may not see
    change = parse_model_change(json_body())
    return jsonify(ctx.models.catalog.update(model_id, log_predictions=change.log_predictions))


def _window() -> int | None:
    """``?window=`` (rows), when given; 400 if not a whole number."""
    raw = request.args.get("window")
    if raw is None:
        return None
    if not raw.isdigit():
        raise BadRequest("query parameter 'window' must be a whole number of rows, e.g. 2000")
    return int(raw)


@bp.get("/<hexid:model_id>/drift")
@require_token()
def drift(model_id: str) -> Response:
    """Each input column's drift in the newest rows against the training profile."""
    window = _window()
    record, _, predictor = _ready(model_id)
    logged = bool(record.get("log_predictions", False))
    return jsonify(services().monitor.drift(model_id, predictor.bundle, logged, window))


@bp.post("/<hexid:model_id>/prediction-log/export")
@require_token()
def export_log(model_id: str) -> tuple[Response, int, dict[str, str]]:
    """Make a data set of the model's prediction log → 202 ``{model_id, dataset_id, ...}``."""
    ctx = services()
    identity = current_identity()
    ctx.models.catalog.get(model_id, identity)
    if not ctx.prediction_log.has_rows(model_id):
        raise Conflict(
            f"model {model_id!r} has no logged predictions: turn its log on "
            f'(PATCH /resource/models/{model_id} {{"log_predictions": true}}) and predict first'
        )
    output_id = Catalog.new_id()
    owner = {"account_id": identity.require_account_id(), "username": identity.username}
    task_id = ctx.enqueue(
        TaskName.EXPORT_PREDICTION_LOG, (model_id, output_id, owner), owner=owner["account_id"]
    )
    return accepted(task_id, model_id=model_id, dataset_id=output_id)


@bp.post("/<hexid:model_id>/explain")
@require_token()
def explain(model_id: str) -> Response | tuple[Response, int, dict[str, str]]:
    """Each row's prediction, base value and one contribution per input column."""
    ctx = services()
    _, version, predictor = _ready(model_id)
    media_type, _ = predict_media_types()
    data = body_bytes(formats.format_name(media_type))
    columns = formats.read_body(data, media_type, predictor.bundle.schema, ctx.settings.limits)
    explain_request.check_rows(columns, ctx.settings.monitoring.explain_max_rows)
    task_id = ctx.enqueue(
        TaskName.EXPLAIN,
        (model_id, version, explain_request.columns_as_json(columns)),
        owner=current_identity().require_account_id(),
    )
    answer = _wait(task_id, ctx.settings.monitoring.explain_wait_seconds)
    if answer is None:
        return accepted(task_id, model_id=model_id)
    return jsonify(answer)


def _wait(task_id: str, seconds: float) -> dict[str, Any] | None:
    """The task's result once it succeeds within ``seconds``; None if still running.

    Polls the result backend (Celery's pub/sub consumer is not safe to share between
    a worker's threads, as ``GET /resource/init`` found).
    """
    result: AsyncResult[Any] = AsyncResult(task_id, app=services().celery)
    deadline = time.monotonic() + seconds
    while not result.ready():
        if time.monotonic() > deadline:
            return None
        time.sleep(_POLL_SECONDS)
    if result.failed():
        raise ServiceError(f"explaining failed: {task_status.failure_text(task_id, result.result)}")
    return cast(dict[str, Any], result.result)
