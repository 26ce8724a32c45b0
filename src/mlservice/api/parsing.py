"""Reading a request's body and query string, with errors that say what is wrong."""

from __future__ import annotations

import json
from typing import Any

from flask import request
from werkzeug.datastructures import FileStorage

from ..config import boolean
from ..errors import BadRequest, Invalid, TooLarge, UnsupportedMedia
from .services import services


def json_body() -> Any:
    """The request's JSON body; 400 naming the problem if it is not JSON, 413 if too large.

    The size is checked from Content-Length before anything is read (and while
    reading, for a body without one); the nesting depth after parsing.
    """
    if request.mimetype != "application/json":
        raise UnsupportedMedia("send the body as JSON with 'Content-Type: application/json'")
    limits = services().settings.limits
    cap = int(limits.max_json_mb * 1024**2)
    if request.content_length is not None and request.content_length > cap:
        _discard_rest()
        raise _too_large(request.content_length, limits.max_json_mb)
    raw = request.stream.read(cap + 1)
    if len(raw) > cap:
        _discard_rest()
        raise _too_large(None, limits.max_json_mb)
    if not raw:
        raise BadRequest("the request body is empty; send JSON")
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise BadRequest("the request body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise _too_deep(limits.max_json_depth) from None
    if _nesting_exceeds(body, raw, limits.max_json_depth):
        raise _too_deep(limits.max_json_depth)
    return body


def _discard_rest(chunk: int = 1024**2) -> None:
    """Read what is left of the body and drop it, a chunk at a time (no memory kept).

    Refusing without reading would close the connection while NGINX is still
    sending the body: NGINX then sees a broken pipe instead of the 413 and
    answers 503. The body is bounded by NGINX's client_max_body_size.
    """
    while request.stream.read(chunk):
        pass


def _too_large(size: int | None, limit_mb: float) -> TooLarge:
    told = f"{size / 1024**2:.1f} MiB" if size is not None else "over the limit"
    return TooLarge(
        f"the JSON body is {told}; at most {limit_mb:g} MiB ([limits] max_json_mb): "
        "send fewer records per request"
    )


def _too_deep(limit: int) -> Invalid:
    return Invalid(
        f"the JSON body nests arrays and objects more than {limit} deep ([limits] max_json_depth)"
    )


def _nesting_exceeds(value: Any, raw: bytes, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` deep (iteratively: no recursion)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # fewer containers than the limit: cannot nest deeper
    pending = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > limit:
            return True
        if not isinstance(node, (dict, list)):
            continue
        children = node.values() if isinstance(node, dict) else node
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def flag(name: str) -> bool:
    """A boolean query parameter (``true``/``1``/``yes``, ``false``/``0``/``no``); 400 else."""
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
