"""Typed request bodies: decoded JSON checked against a declared type, refusals naming the field.

Every JSON body a route reads (a training request, a scoring job, a user) is
declared once as a :class:`Body`: a msgspec ``Struct`` whose fields say each
name and type, whose ``Meta`` constraints say patterns and lengths, and whose
``complaints`` say, per field, what a client is told when its value does not
fit. :func:`decode` turns the JSON into that type or refuses it with one
``400`` naming the field and the fix, the same way for every body:

* a field the type does not declare: ``unknown field(s) 'x'; known: ...``;
* a required field missing: ``'x' is required``;
* a value of the wrong type or outside its constraints: ``'x' <complaint>``.

What a value *means* (a column of the data set, a range a setting allows) is
checked after, by the domain, with ``422``. ``tests/unit/test_contract_types.py``
checks each type against its schema in ``ml-service.yml``.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, TypeVar

import msgspec

from .errors import BadRequest

#: A data set's or a model's id, as the service hands them out (``uuid4().hex``).
HEX_ID = "^[0-9a-f]{32}$"
#: A registered model's name (one namespace for the whole service; URLs use it unanchored).
REGISTERED_NAME = "[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
#: An alias of a registered model (``production``): a letter first, so never a version number.
ALIAS_NAME = "[A-Za-z][A-Za-z0-9_-]{0,63}"


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A request body type: every field declared, every other one refused."""

    #: field -> what the client is told when the field's value does not fit.
    complaints: ClassVar[dict[str, str]] = {}
    #: The body's shape in one line, for a body that is not even a JSON object.
    example: ClassVar[str] = "{...}"


B = TypeVar("B", bound=Body)

#: msgspec's names for JSON types, as a client would say them.
_JSON_TYPES = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "array": "a list",
    "object": "a JSON object",
    "null": "null",
}
_PATH = re.compile(r" - at `(?:key` in `)?\$\.?([^`.\[]*)")  # a dict's key: "at `key` in `$.x`"


def decode(body: Any, kind: type[B]) -> B:
    """``body`` (decoded JSON) as a ``kind``; :class:`BadRequest` naming the field if not."""
    if not isinstance(body, dict):
        raise BadRequest(f"send a JSON object: {kind.example}")
    known = kind.__struct_fields__
    unknown = [name for name in body if name not in known]
    if unknown:
        raise BadRequest(
            f"unknown field(s) {', '.join(map(repr, unknown))}; known: {', '.join(known)}"
        )
    try:
        return msgspec.convert(body, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise BadRequest(explain(str(exc), kind)) from None


def explain(message: str, kind: type[Body]) -> str:
    """msgspec's refusal in the client's terms, with the field's own complaint if it has one."""
    missing = re.match(r"Object missing required field `([^`]*)`", message)
    if missing:
        return f"{missing.group(1)!r} is required"
    where = _PATH.search(message)
    field = where.group(1) if where else ""
    if field in kind.complaints:
        return f"{field!r} {kind.complaints[field]}"
    detail = message.split(" - at ")[0]
    expected = re.match(r"Expected `([^`|]*)(?:\s*\|\s*null)?`", detail)
    if expected and expected.group(1) in _JSON_TYPES:
        detail = f"must be {_JSON_TYPES[expected.group(1)]}"
    return f"{field!r} {detail}" if field else detail


def to_json(body: Body) -> dict[str, Any]:
    """A body as plain JSON values (a Celery argument, a stored request)."""
    value = msgspec.to_builtins(body)
    assert isinstance(value, dict)
    return value
