"""Reading a request's body and query string, with errors that say what is wrong."""

from __future__ import annotations

import json
from typing import Any

from flask import request
from werkzeug.datastructures import FileStorage

from ..config import boolean
from ..errors import BadRequest, UnsupportedMedia


def json_body() -> Any:
    """The request's JSON body; 400 naming the problem if it is not JSON."""
    if request.mimetype != "application/json":
        raise UnsupportedMedia("send the body as JSON with 'Content-Type: application/json'")
    raw = request.get_data(cache=False)
    if not raw:
        raise BadRequest("the request body is empty; send JSON")
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise BadRequest("the request body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


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
