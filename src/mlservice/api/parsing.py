"""Reading a request's body and query string, with errors that say what is wrong."""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.datastructures import FileStorage

from ..config import boolean
from ..errors import BadRequest, NotAcceptable, TooLarge, UnsupportedMedia
from ..serving import formats
from .services import services


def json_body() -> Any:
    """The request's JSON body; 400 naming the problem if it is not JSON, 413 if too large.

    The size is checked from Content-Length before anything is read (and while
    reading, for a body without one); the nesting depth after parsing.
    """
    if request.mimetype != formats.JSON:
        raise UnsupportedMedia("send the body as JSON with 'Content-Type: application/json'")
    raw = body_bytes("JSON")
    if not raw:
        raise BadRequest("the request body is empty; send JSON")
    return formats.decode_json(raw, services().settings.limits.max_json_depth)


def body_bytes(what: str) -> bytes:
    """The whole request body, at most ``[limits] max_json_mb``; 413 (body drained) if more.

    ``what`` names the format in the refusal ("JSON", "CSV"...). The size is
    checked from Content-Length before anything is read, and while reading
    for a body without one.
    """
    limit_mb = services().settings.limits.max_json_mb
    cap = int(limit_mb * 1024**2)
    if request.content_length is not None and request.content_length > cap:
        _discard_rest()
        raise _too_large(what, request.content_length, limit_mb)
    # With a Content-Length, read just that: read(n) allocates an n-byte buffer first,
    # and a cap-sized one on every one-row prediction cost more than the parse.
    length = request.content_length
    raw = request.stream.read(cap + 1 if length is None else length)
    if len(raw) > cap:
        _discard_rest()
        raise _too_large(what, None, limit_mb)
    return raw


def predict_media_types() -> tuple[str, str]:
    """A prediction's body media type (415 if unreadable) and answer type (406 if none fits).

    Both are refused before the body is read: the unread body is drained first
    (see :func:`_discard_rest`). No ``Accept``, or ``*/*``, means JSON, at no
    cost to the common request.
    """
    media_type = request.mimetype
    try:
        formats.check_readable(media_type)
    except UnsupportedMedia:
        _discard_rest()
        raise
    accept = request.headers.get("Accept")
    if not accept or accept == "*/*" or accept == formats.JSON:
        return media_type, formats.JSON
    answer_type = request.accept_mimetypes.best_match(formats.WRITABLE)
    if answer_type is None:
        _discard_rest()
        raise NotAcceptable(
            f"cannot answer in {accept!r}; ask with Accept: {', '.join(formats.WRITABLE)} "
            "(or */*, which means JSON)"
        )
    return media_type, answer_type


def _discard_rest(chunk: int = 1024**2) -> None:
    """Read what is left of the body and drop it, a chunk at a time (no memory kept).

    Refusing without reading would close the connection while NGINX is still
    sending the body: NGINX then sees a broken pipe instead of the 413 and
    answers 503. The body is bounded by NGINX's client_max_body_size.
    """
    while request.stream.read(chunk):
        pass


def _too_large(what: str, size: int | None, limit_mb: float) -> TooLarge:
    told = f"{size / 1024**2:.1f} MiB" if size is not None else "over the limit"
    return TooLarge(
        f"the {what} body is {told}; at most {limit_mb:g} MiB ([limits] max_json_mb): "
        "send fewer records per request"
    )


def flag(name: str) -> bool:
    """A boolean query parameter (``true``/``1``/``yes``, ``false``/``0``/``no``); 400 else."""
    if not request.query_string:  # the common prediction: no query string to parse
        return False
    value = request.args.get(name, "").strip()
    if not value:
        return False
    try:
        return boolean(value)
    except ValueError:
        raise BadRequest(
            f"query parameter {name!r} must be true or false, not {value.lower()!r}"
        ) from None


def page_args() -> tuple[int, int]:
    """``?page=`` (from 1) and ``?per_page=`` (1..500, default 50); 400 if not numbers."""
    values = []
    for name, default, top in (("page", 1, 1_000_000), ("per_page", 50, 500)):
        raw = request.args.get(name, str(default))
        if not raw.isdigit() or not 1 <= int(raw) <= top:
            raise BadRequest(f"query parameter {name!r} must be an integer from 1 to {top}")
        values.append(int(raw))
    return values[0], values[1]


def uploaded_file(field: str = "file") -> FileStorage:
    """The multipart file part ``field``; 400 naming the field if it is absent."""
    part = request.files.get(field)
    if part is None:
        raise BadRequest(f"multipart/form-data upload needs a file field named {field!r}")
    return part
