"""``/resource/models``: train, list, describe, predict, download, upload, delete."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, jsonify, request, url_for

from ..celery_app import TaskName
from ..errors import BadRequest, Conflict, UnsupportedMedia
from ..serving import onnx_export
from ..store.bundles import BundleError, Engine
from ..store.records import ModelRecord
from ..training import allowed_estimators, callbacks
from ..training.request import check_against_dataset, parse_training_request
from . import uploads
from .auth import current_identity, require_token
from .parsing import json_body, page_args
from .predict import check_ready, predict_with
from .services import services
from .tasks import accepted

bp = Blueprint("models", __name__, url_prefix="/resource/models")


@bp.post("")
@require_token()
def create_model() -> tuple[Response, int, dict[str, str]]:
    """Validate the request, enqueue training → 202 ``{model_id, task_id, status_url}``."""
    ctx = services()
    identity = current_identity()
    training_request = parse_training_request(json_body())
    dataset = ctx.datasets.catalog.get(training_request.dataset_id, identity)
    check_against_dataset(training_request, dataset)
    allowed_estimators.check_limits(
        training_request.estimator, training_request.estimator_params, ctx.settings.limits
    )
    if training_request.callback_url is not None:
        callbacks.check_url(
            training_request.callback_url, ctx.settings.service.callback_allow_private
        )
    if training_request.register_as is not None:
        ctx.registry.check_registrable(training_request.register_as, identity)
    # The task id is chosen first so the record is complete before a worker can see it.
    task_id = uuid.uuid4().hex
    record = ctx.models.create(
        training_request.record(identity, task_id), training_request.callback_secret
    )
    ctx.enqueue(
        TaskName.TRAIN_MODEL,
        (record["id"],),
        task_id=task_id,
        owner=identity.require_account_id(),
        undo=lambda: ctx.models.delete(record["id"]),
    )
    return accepted(task_id, model_id=record["id"])


@bp.get("")
@require_token()
def list_models() -> Response:
    """Your models (admins: everyone's), newest first, paged."""
    page, per_page = page_args()
    records, total = services().models.catalog.list(current_identity(), page, per_page)
    return jsonify(models=records, page=page, per_page=per_page, total=total)


def _visible(model_id: str) -> ModelRecord:
    """The model if the caller may see it; 404 otherwise."""
    return services().models.catalog.get(model_id, current_identity())


@bp.get("/<hexid:model_id>")
@require_token()
def get_model(model_id: str) -> Response:
    """Status, metrics, estimator and params, input schema, timings, error."""
    return jsonify(_visible(model_id))


@bp.delete("/<hexid:model_id>")
@require_token()
def delete_model(model_id: str) -> tuple[str, int]:
    """Delete the model; every API worker stops serving it on its next request → 204.

    Its training, if queued or running, is revoked (a running one is stopped). 409
    while a registered version pins it.
    """
    _visible(model_id)
    ctx = services()
    record = ctx.models.delete(model_id)
    if record.get("task_id"):  # queued or running: its training stops
        ctx.revoke(record["task_id"])
    return "", 204


@bp.post("/<hexid:model_id>/predict")
def predict(model_id: str) -> Response:
    """Predict with one of your models; same bodies and answers as ``/resource/predict``.

    Authenticated inside :func:`predict_with`, in the same Redis round trip as the model lookup.
    """
    return predict_with(model_id, user_model=True)


#: ``?format=`` of a model download: the signed bundle (default) or the ONNX graph.
DOWNLOAD_FORMATS = ("bundle", "onnx")


@bp.get("/<hexid:model_id>/download")
@require_token()
def download(model_id: str) -> tuple[str, int, dict[str, str]]:
    """The signed bundle file (pipeline with encoders and scaler, schema, metrics, versions),
    or with ``?format=onnx`` the model's ONNX graph (409 when it has none)."""
    record = _visible(model_id)
    check_ready(model_id, record)
    file_format = request.args.get("format", "bundle")
    if file_format not in DOWNLOAD_FORMATS:
        raise BadRequest(
            f"unknown download format {file_format!r}; use bundle (the default) or onnx"
        )
    if file_format == "onnx":
        return _download_onnx(model_id, record)
    ctx = services()
    path = ctx.models.bundle_path(model_id)
    return (
        "",
        200,
        {
            "X-Accel-Redirect": ctx.models.artifacts.accel_path(path),
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{model_id}.mlbundle"',
            "Cache-Control": "private, no-store",
        },
    )


def _download_onnx(model_id: str, record: ModelRecord) -> tuple[str, int, dict[str, str]]:
    """The model's ONNX graph (its inputs are in the record's ``engine.onnx_inputs``: NGINX
    passes no custom header with a file it sends); 409 naming the engine's reason when it
    has no graph."""
    engine = record.get("engine") or {"name": "scikit-learn", "reason": "not compiled"}
    no_graph = Conflict(
        f"model {model_id!r} has no ONNX graph: it is served by {engine['name']}, because: "
        f"{engine['reason'].rstrip('.')}. Download it as a bundle instead (format=bundle)."
    )
    if engine["name"] != Engine.ONNXRUNTIME:
        raise no_graph
    ctx = services()
    try:
        path = onnx_export.graph_file(ctx.models, model_id, record.get("version", 0))
    except onnx_export.NoGraph:
        raise no_graph from None
    return (
        "",
        200,
        {
            "X-Accel-Redirect": ctx.models.artifacts.accel_path(path),
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{model_id}.onnx"',
            "Cache-Control": "private, no-store",
        },
    )


@bp.post("/upload")
@require_token()
def upload() -> Response:
    """Import a bundle this service (or one sharing its secret) signed → 201.

    Behind NGINX the multipart body is a file NGINX wrote (:mod:`.uploads`).
    """
    ctx = services()
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMedia("send the bundle as multipart/form-data, field 'file'")
    limit = ctx.settings.service.max_upload_bytes
    path = uploads.body_file()
    if path is not None:
        form, files = uploads.parse_multipart(path, limit + uploads.MULTIPART_OVERHEAD)
    else:
        uploads.guard_stream()
        request.max_content_length = limit + uploads.MULTIPART_OVERHEAD
        form, files = request.form, request.files
    try:
        part = uploads.file_part(files)
        try:
            record = ctx.models.import_bundle(
                part.stream, current_identity(), form.get("name"), limit
            )
        except BundleError as exc:  # the client's file, not the service's
            raise BadRequest(str(exc)) from None
    finally:
        for spooled in files.values():
            spooled.close()
    response = jsonify(record)
    response.status_code = 201
    response.headers["Location"] = url_for("models.get_model", model_id=record["id"])
    return response
