"""``/resource/models``: train, list, describe, predict, download, upload, delete."""

from __future__ import annotations

import uuid

from flask import Blueprint, jsonify, request, url_for

from .. import callbacks, task_registry, tasks
from ..app import services
from ..catalog import NotFound
from ..models import ModelRequestError, check_against_dataset, parse_request
from .auth import current_identity, require_token
from .errors import error_response
from .inputs import json_body, page_args, uploaded_file
from .predict import not_ready, predict_with

bp = Blueprint("models", __name__, url_prefix="/resource/models")


@bp.post("")
@require_token()
def create_model():
    """Validate the request, enqueue training → 202 ``{model_id, task_id}`` + Location."""
    ctx = services()
    identity = current_identity()
    try:
        training_request = parse_request(json_body())
        dataset = ctx.datasets.catalog.get(training_request.dataset_id, identity)
        check_against_dataset(training_request, dataset)
        if training_request.callback_url is not None:
            callbacks.check_url(training_request.callback_url, ctx.settings.callback_allow_private)
    except ModelRequestError as exc:
        return error_response(exc.status, str(exc))
    except NotFound as exc:
        return error_response(404, str(exc))
    except callbacks.CallbackError as exc:
        return error_response(422, str(exc))
    # The task id is chosen first so the record is complete before a worker can see it.
    task_id = uuid.uuid4().hex
    record = ctx.models.create(training_request, identity, task_id)
    task_registry.record_owner(ctx.store, task_id, identity.username)
    tasks.train_model.apply_async((record["id"],), task_id=task_id)
    location = url_for("tasks.task_status", task_id=task_id)
    return jsonify(model_id=record["id"], task_id=task_id), 202, {"Location": location}


@bp.get("")
@require_token()
def list_models():
    """Your models (admins: everyone's), newest first, paged."""
    page, per_page = page_args()
    records, total = services().models.catalog.list(current_identity(), page, per_page)
    return jsonify(models=records, page=page, per_page=per_page, total=total)


def _visible(model_id: str) -> dict:
    return services().models.catalog.get(model_id, current_identity())


@bp.get("/<model_id>")
@require_token()
def get_model(model_id: str):
    """Status, metrics, estimator and params, input schema, timings, error."""
    try:
        return jsonify(_visible(model_id))
    except NotFound as exc:
        return error_response(404, str(exc))


@bp.delete("/<model_id>")
@require_token()
def delete_model(model_id: str):
    """Delete the model; every API worker stops serving it on its next request → 204."""
    try:
        _visible(model_id)
    except NotFound as exc:
        return error_response(404, str(exc))
    services().models.delete(model_id)
    return "", 204


def _ready(model_id: str):
    """The visible, ready model's record, or the error response to send instead."""
    try:
        record = _visible(model_id)
    except NotFound as exc:
        return None, error_response(404, str(exc))
    refusal = not_ready(model_id, record)
    return (None, refusal) if refusal is not None else (record, None)


@bp.post("/<model_id>/predict")
def predict(model_id: str):
    """Predict with one of your models; same bodies and answers as ``/resource/predict``.

    Authenticated inside :func:`predict_with`, in the same Redis round trip as the model lookup.
    """
    return predict_with(model_id, user_model=True)


@bp.get("/<model_id>/download")
@require_token()
def download(model_id: str):
    """The signed bundle file (pipeline with encoders and scaler, schema, metrics, versions)."""
    record, refusal = _ready(model_id)
    if refusal is not None:
        return refusal
    ctx = services()
    path = ctx.models.bundle_path(model_id)
    return "", 200, {
        "X-Accel-Redirect": ctx.models.artifacts.accel_path(path),
        "Content-Type": "application/octet-stream",
        "Content-Disposition": f'attachment; filename="{model_id}.mlbundle"',
    }


@bp.post("/upload")
@require_token()
def upload():
    """Import a bundle this service (or one sharing its secret) signed → 201."""
    ctx = services()
    if request.mimetype != "multipart/form-data":
        return error_response(415, "send the bundle as multipart/form-data, field 'file'")
    limit = ctx.settings.max_upload_bytes
    request.max_content_length = limit + 1024 * 1024
    part = uploaded_file()
    try:
        with part.stream:
            record = ctx.models.import_bundle(part.stream, current_identity(),
                                              request.form.get("name"), limit)
    except ModelRequestError as exc:
        return error_response(exc.status, str(exc))
    response = jsonify(record)
    response.status_code = 201
    response.headers["Location"] = url_for("models.get_model", model_id=record["id"])
    return response
