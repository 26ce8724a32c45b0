"""Which version answers a prediction by name: ``name@alias`` or ``name/versions/<n>``.

This is the hot path of predictions by name, so it reads nothing itself: the
route asks the worker's remembered reads (:class:`~mlservice.serving.hot_reads.HotReads`)
for the keys below, together with the token's user, and hands the raw
answers here. In the common case they are all remembered and no Redis round
trip is made; an alias that moves is forgotten by every worker before the
PUT that moved it has answered (the alias key is tracked), so no request
sent after that answer is served by the old version.

A split alias picks one of its versions per request, at random with the
alias's weights; a shadow version is named for the caller to send a copy to
(:mod:`.shadow`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import redis

from ..errors import NotFound
from ..security import Identity
from ..serving.hot_reads import Wanted
from .registered_models import may_see
from .registry_records import (
    ALIAS,
    RECORD,
    VERSION,
    AliasRecord,
    RegisteredModelRecord,
    alias_key,
    record_key,
    version_key,
)


@dataclass(frozen=True)
class Route:
    """The version a request goes to, its model, and the shadow version to copy it to."""

    name: str
    version: int
    model_id: str
    shadow: tuple[int, str] | None = None  # (version, model id)
    #: The name's prediction log is on: the request is logged with the model it reaches.
    logged: bool = False


def _read(name: str) -> Wanted:
    return (name.encode(), lambda pipe: _get(pipe, name))


def _get(pipe: redis.client.Pipeline, name: str) -> None:
    pipe.get(name)


def record_read(name: str) -> Wanted:
    """The read of a registered model's record (who owns it)."""
    return _read(record_key(name))


def alias_read(name: str, alias: str) -> Wanted:
    """The read of an alias (where it points)."""
    return _read(alias_key(name, alias))


def version_read(name: str, version: int) -> Wanted:
    """The read of a version (its model)."""
    return _read(version_key(name, version))


def _visible_record(viewer: Identity, name: str, record_raw: bytes | None) -> RegisteredModelRecord:
    """The name's record; 404 for a name that does not exist or that the viewer may not use."""
    record = RECORD.decode(record_raw) if record_raw is not None else None
    if record is None or not may_see(viewer, record):
        raise NotFound(f"no registered model {name!r}")
    return record


def by_alias(
    viewer: Identity,
    name: str,
    alias: str,
    record_raw: bytes | None,
    alias_raw: bytes | None,
    draw: Callable[[], float] = random.random,
) -> Route:
    """The version ``name@alias`` sends this request to (a split: drawn by weight)."""
    named = _visible_record(viewer, name, record_raw)
    if alias_raw is None:
        raise NotFound(f"registered model {name!r} has no alias {alias!r}")
    record = ALIAS.decode(alias_raw)
    version = choose(record, draw)
    shadow = record["shadow"]
    return Route(
        name,
        version,
        record["models"][str(version)],
        (shadow, record["models"][str(shadow)]) if shadow is not None else None,
        named.get("log_predictions", False),
    )


def by_version(
    viewer: Identity, name: str, version: int, record_raw: bytes | None, version_raw: bytes | None
) -> Route:
    """The route of ``name/versions/<version>``."""
    named = _visible_record(viewer, name, record_raw)
    if version_raw is None:
        raise NotFound(f"registered model {name!r} has no version {version}")
    model_id = VERSION.decode(version_raw)["model_id"]
    return Route(name, version, model_id, logged=named.get("log_predictions", False))


def choose(record: AliasRecord, draw: Callable[[], float] = random.random) -> int:
    """The alias's version, or one of its split drawn with the weights (``draw``: a number
    in [0, 1), uniformly)."""
    if record["version"] is not None:
        return record["version"]
    split = record["versions"] or {}
    point = draw() * sum(split.values())
    for version, weight in split.items():
        point -= weight
        if point < 0:
            return int(version)
    return int(version)  # a draw of exactly the total, which floating point may give
