"""``/resource/datasets``: upload CSV or Parquet, list, describe, download, delete."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, url_for

from ..errors import TooLarge
from ..store import dataset_files
from ..store.records import DatasetRecord
from .auth import current_identity, require_token
from .parsing import page_args, uploaded_file
from .services import services

bp = Blueprint("datasets", __name__, url_prefix="/resource/datasets")

#: Room for multipart headers and boundaries on top of the file itself.
MULTIPART_OVERHEAD = 1024 * 1024


def _created(record: DatasetRecord) -> Response:
    response = jsonify(dataset_files.public(record))
    response.status_code = 201
    response.headers["Location"] = url_for("datasets.get_dataset", dataset_id=record["id"])
    return response


@bp.post("")
@require_token()
def upload() -> Response:
    """Multipart (field ``file``, optional ``name``) or a raw CSV/Parquet body → 201 + profile."""
    ctx = services()
    limit = ctx.settings.service.max_upload_bytes
    if request.content_length is not None and request.content_length > limit + MULTIPART_OVERHEAD:
        raise TooLarge(f"the upload is larger than the limit of {limit} bytes")
    if request.mimetype == "multipart/form-data":
        request.max_content_length = limit + MULTIPART_OVERHEAD
        part = uploaded_file()
        with part.stream:
            file_format = dataset_files.detect_format(part.mimetype, part.filename)
            record = ctx.datasets.adopt(
                part.stream,
                file_format,
                current_identity(),
                request.form.get("name") or part.filename,
            )
    else:
        file_format = dataset_files.detect_format(request.mimetype, request.args.get("name"))
        record = ctx.datasets.upload(
            request.stream, file_format, current_identity(), request.args.get("name"), limit
        )
    return _created(record)


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
    """One data set's metadata and profile."""
    return jsonify(dataset_files.public(_visible(dataset_id)))


@bp.get("/<hexid:dataset_id>/download")
@require_token()
def download(dataset_id: str) -> Response:
    """The uploaded bytes, sent by NGINX (``X-Accel-Redirect``) once the app has authorised it.

    A CSV with formula-like text cells is streamed by the app instead, those
    cells escaped (``[service] csv_formula_escape``).
    """
    ctx = services()
    record = _visible(dataset_id)
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
    """Delete the file and its metadata → 204 (models trained on it keep working)."""
    services().datasets.delete(_visible(dataset_id))
    return "", 204
