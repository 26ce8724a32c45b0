"""``/resource/datasets``: upload CSV or Parquet, list, describe, download, delete."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, jsonify, request, url_for

from ..celery_app import TaskName
from ..errors import BadRequest, TooLarge
from ..store import dataset_files
from ..store.records import DatasetRecord, DatasetStatus
from . import uploads
from .auth import current_identity, require_token
from .parsing import page_args, uploaded_file
from .services import services
from .tasks import status_url

bp = Blueprint("datasets", __name__, url_prefix="/resource/datasets")


def _created(record: DatasetRecord) -> Response:
    response = jsonify(dataset_files.public(record))
    response.status_code = 201
    response.headers["Location"] = url_for("datasets.get_dataset", dataset_id=record["id"])
    return response


def _profiling(record: DatasetRecord) -> Response:
    """Start the profile of a large upload → 202: the record, its ``task_id`` and ``status_url``.

    ``Location`` is the data set, whose ``status`` says when it is ready. Should
    the task not be queued (Redis away), the data set goes: nothing would profile it.
    """
    ctx = services()
    task_id = record["task_id"]
    try:
        ctx.enqueue(
            TaskName.PROFILE_DATASET,
            (record["id"],),
            task_id=task_id,
            owner=record["owner_id"],
            undo=lambda: ctx.datasets.delete(record),
        )
    except BaseException:  # not even its owner recorded: the data set goes all the same
        ctx.datasets.delete(record)
        raise
    response = jsonify(dataset_files.public(record) | {"status_url": status_url(task_id)})
    response.status_code = 202
    response.headers["Location"] = url_for("datasets.get_dataset", dataset_id=record["id"])
    return response


@bp.post("")
@require_token()
def upload() -> Response:
    """Multipart (field ``file``, optional ``name``) or a raw CSV/Parquet body.

    → 201 with the profile, or 202 ``profiling`` above ``[service] inline_profile_mb``.
    Behind NGINX the body is a file NGINX wrote, linked into place (:mod:`.uploads`).
    """
    path = uploads.body_file()
    record = _from_file(path) if path is not None else _from_stream()
    if dataset_files.status_of(record) == DatasetStatus.PROFILING:
        return _profiling(record)
    return _created(record)


def _too_large(limit: int) -> TooLarge:
    return TooLarge(
        f"the upload is larger than the limit of {limit} bytes ([service] max_upload_mb)"
    )


def _from_file(path: Path) -> DatasetRecord:
    """Record the body NGINX wrote to ``path``: a raw body is linked into place as it is,
    a multipart body's file part is parsed out of it first."""
    ctx = services()
    limit = ctx.settings.service.max_upload_bytes
    inline_limit = ctx.settings.service.inline_profile_bytes
    size = path.stat().st_size
    if request.mimetype != "multipart/form-data":
        if size > limit:
            raise _too_large(limit)
        file_format = dataset_files.detect_format(request.mimetype, request.args.get("name"))
        with path.open("rb") as body:
            return ctx.datasets.adopt(
                body,
                file_format,
                current_identity(),
                request.args.get("name"),
                inline_limit,
                _given_dialect(file_format),
            )
    if size > limit + uploads.MULTIPART_OVERHEAD:
        raise _too_large(limit)
    form, files = uploads.parse_multipart(path, limit + uploads.MULTIPART_OVERHEAD)
    try:
        part = uploads.file_part(files)
        file_format = dataset_files.detect_format(part.mimetype, part.filename)
        return ctx.datasets.adopt(
            part.stream,
            file_format,
            current_identity(),
            form.get("name") or part.filename,
            inline_limit,
            _given_dialect(file_format),
        )
    finally:
        for spooled in files.values():
            spooled.close()


def _from_stream() -> DatasetRecord:
    """Record a body that comes on the request's stream (no NGINX in front of the API)."""
    ctx = services()
    limit = ctx.settings.service.max_upload_bytes
    inline_limit = ctx.settings.service.inline_profile_bytes
    if (
        request.content_length is not None
        and request.content_length > limit + uploads.MULTIPART_OVERHEAD
    ):
        raise _too_large(limit)
    uploads.guard_stream()
    if request.mimetype == "multipart/form-data":
        request.max_content_length = limit + uploads.MULTIPART_OVERHEAD
        request.form_data_parser_class = uploads.LargeReadsFormParser
        part = uploaded_file()
        with part.stream:
            file_format = dataset_files.detect_format(part.mimetype, part.filename)
            return ctx.datasets.adopt(
                part.stream,
                file_format,
                current_identity(),
                request.form.get("name") or part.filename,
                inline_limit,
                _given_dialect(file_format),
            )
    file_format = dataset_files.detect_format(request.mimetype, request.args.get("name"))
    given = _given_dialect(file_format)
    return ctx.datasets.upload(
        request.stream,
        file_format,
        current_identity(),
        request.args.get("name"),
        limit,
        inline_limit,
        given,
    )


def _given_dialect(file_format: str) -> dict[str, str]:
    """``?delimiter=`` and ``?decimal=`` (CSV only; 400 if not allowed values)."""
    given = dataset_files.given_dialect(request.args.get("delimiter"), request.args.get("decimal"))
    if given and file_format != dataset_files.CSV_FORMAT:
        raise BadRequest("query parameters 'delimiter' and 'decimal' are for CSV files")
    return given


@bp.get("")
@require_token()
def list_datasets() -> Response:
    """Your data sets (admins: everyone's), newest first, paged."""
    page, per_page = page_args()
    records, total = services().datasets.catalog.list(current_identity(), page, per_page)
    return jsonify(
        datasets=[dataset_files.public(r) for r in records],
        page=page,
        per_page=per_page,
        total=total,
    )


def _visible(dataset_id: str) -> DatasetRecord:
    """The data set if the caller may see it; 404 otherwise."""
    return services().datasets.catalog.get(dataset_id, current_identity())


@bp.get("/<hexid:dataset_id>")
@require_token()
def get_dataset(dataset_id: str) -> Response:
    """One data set's metadata, ``status`` and (once ready) profile."""
    return jsonify(dataset_files.public(_visible(dataset_id)))


@bp.get("/<hexid:dataset_id>/download")
@require_token()
def download(dataset_id: str) -> Response:
    """The uploaded bytes, sent by NGINX (``X-Accel-Redirect``) once the app has authorised it.

    A CSV with formula-like text cells is streamed by the app instead, those
    cells escaped (``[service] csv_formula_escape``). 409 until the data set is ready.
    """
    ctx = services()
    record = _visible(dataset_id)
    dataset_files.require_ready(record)
    path = ctx.datasets.path(record)
    name = record["name"]
    filename = name if name.endswith(path.suffix) else name + path.suffix
    headers = {
        "Content-Type": dataset_files.CONTENT_TYPES[record["format"]],
        "Content-Disposition": _attachment(filename),
        "Cache-Control": "private, no-store",
    }
    if ctx.settings.service.csv_formula_escape and dataset_files.has_formula_cells(record):
        return Response(dataset_files.neutralised_csv(path, record), headers=headers)
    headers["X-Accel-Redirect"] = ctx.datasets.artifacts.accel_path(path)
    return Response("", headers=headers)


def _attachment(filename: str) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)[:120]
    return f'attachment; filename="{safe or "download"}"'


@bp.delete("/<hexid:dataset_id>")
@require_token()
def delete_dataset(dataset_id: str) -> tuple[str, int]:
    """Delete the file and its metadata → 204 (models trained on it keep working).

    A data set still being profiled goes too: its task finds it gone and stops there.
    """
    services().datasets.delete(_visible(dataset_id))
    return "", 204
