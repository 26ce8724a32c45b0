"""What the registry keeps in Redis, by name: its record types and its key layout.

Everything lives under ``mlservice:registry:`` (see :func:`keys`). Three kinds
of key are read by every prediction by name, and so are *tracked* (each API
worker remembers them until Redis says they changed, see
:mod:`mlservice.serving.hot_reads`): a registered model's record, its
versions and its aliases. The rest (history, counters, shadow counts,
indexes) change often or are read rarely, and live under other prefixes so
that their writes never make a worker forget what it remembered.

Records are JSON, checked on read by msgspec against the TypedDicts below,
like :mod:`mlservice.store.catalog`'s: a reader gets what the type says or a
clear error.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

import msgspec

from ..redis_client import key
from ..store.bundles import EngineInfo

#: The registry's part of the key space.
BASE = "registry"


class RegisteredModelRecord(TypedDict):
    """A registered model: a name that versions and aliases hang from."""

    name: str
    #: Who owns it: the user's name as people read it ...
    owner: str
    #: ... and the account id every check compares (``registered_models.owner_of``).
    owner_id: str
    description: str
    tags: dict[str, str]
    #: Where registry events are POSTed (signed with a secret kept apart), or ``None``.
    webhook_url: str | None
    #: The newest version, ``None`` before the first.
    latest_version: int | None
    created_at: float
    updated_at: float
    #: Predictions by this name are kept in the prediction log of the model they reach
    #: (docs/monitoring.md); absent when never set.
    log_predictions: NotRequired[bool]


class Lineage(TypedDict):
    """Where a version's model came from, copied from the model when the version was added.

    ``None`` where the model does not know (an uploaded bundle has no data set).
    """

    source: str  # trained or upload (a ModelSource)
    dataset_id: str | None
    #: sha256 of the stored data set file the model was trained on.
    dataset_sha256: str | None
    target: str | None
    estimator: str | None
    params: dict[str, Any] | None
    metrics: dict[str, Any] | None
    #: The engine serving the model (the model's, as it is now: compiling ends after a
    #: version is added).
    engine: EngineInfo | None
    trained_by: str
    trained_at: float | None
    #: The version of this service (its Python package) whose worker trained the model.
    service_version: str | None


class VersionRecord(TypedDict):
    """One version of a registered model: immutable, it pins a ready model."""

    name: str
    version: int
    model_id: str
    registered_by: str
    registered_at: float
    lineage: Lineage


class AliasRecord(TypedDict):
    """Where an alias points: one version, or a weighted split; maybe a shadow version.

    ``models`` (version -> model id, for every version named, the shadow's
    too) lets a prediction go from the alias to the model in one read; the API
    does not show it.
    """

    alias: str
    version: int | None  # a single version, or None for a split
    versions: dict[str, int] | None  # a split: version -> weight, or None
    shadow: int | None
    models: dict[str, str]
    set_by: str
    set_at: float


class ShadowCounts(TypedDict):
    """How a shadow version's answers compared with the served ones (copies it was sent)."""

    requests_compared: int
    requests_agreed: int
    #: requests_agreed / requests_compared, ``None`` before the first comparison.
    agreement_rate: float | None
    rows_compared: int
    rows_agreed: int
    #: Copies the shadow version could not answer (an error, other input columns).
    failed: int
    #: Copies never run: the worker's shadow queue was full.
    dropped: int


class AliasView(TypedDict):
    """An alias as the API shows it (``AliasRecord`` without the model ids)."""

    alias: str
    version: int | None
    versions: dict[str, int] | None
    shadow: int | None
    set_by: str
    set_at: float


class VersionView(VersionRecord):
    """A version as the API shows it: the aliases serving it and its shadow counts."""

    aliases: list[str]
    shadow: ShadowCounts | None


class RegisteredModelView(RegisteredModelRecord):
    """A registered model with every version and alias."""

    versions: list[VersionView]
    aliases: list[AliasView]


class HistoryEntry(TypedDict):
    """One change, as the history shows it."""

    id: str  # the Redis stream id: <milliseconds>-<sequence>
    event: str  # an Event
    at: float
    actor: str
    version: int | None
    alias: str | None
    before: Any
    after: Any


RECORD = msgspec.json.Decoder(RegisteredModelRecord)
VERSION = msgspec.json.Decoder(VersionRecord)
ALIAS = msgspec.json.Decoder(AliasRecord)


def encode(record: Any) -> bytes:
    """A record as stored."""
    return msgspec.json.encode(record)


# --- keys ---------------------------------------------------------------------------------


def record_key(name: str) -> str:
    """A registered model's record (tracked)."""
    return key(BASE, "model", name)


def version_key(name: str, version: int) -> str:
    """One version's record (tracked; never changes once written)."""
    return key(BASE, "version", name, str(version))


def alias_key(name: str, alias: str) -> str:
    """One alias's record (tracked)."""
    return key(BASE, "alias", name, alias)


#: What API workers track (``context.TRACKED_PREFIXES``): the keys a prediction by name reads.
TRACKED_PREFIXES = (key(BASE, "model", ""), key(BASE, "version", ""), key(BASE, "alias", ""))


def versions_key(name: str) -> str:
    """The sorted set of a name's version numbers."""
    return key(BASE, "versions", name)


def alias_names_key(name: str) -> str:
    """The set of a name's aliases."""
    return key(BASE, "alias-names", name)


def counter_key(name: str) -> str:
    """The last version number given under a name: it outlives the name, never reused."""
    return key(BASE, "counter", name)


def history_key(name: str) -> str:
    """The name's history: a stream, never trimmed (see :mod:`.history`)."""
    return key(BASE, "history", name)


def shadow_key(name: str, version: int) -> str:
    """A hash of the version's shadow counts (see :mod:`.shadow`)."""
    return key(BASE, "shadow", name, str(version))


def webhook_secret_key(name: str) -> str:
    """The key that signs the name's webhook deliveries (never shown)."""
    return key(BASE, "webhook-secret", name)


def webhook_cursor_key(name: str) -> str:
    """The id of the last history entry the webhook was sent (see :mod:`.events`)."""
    return key(BASE, "webhook-cursor", name)


#: Every name, by creation time (for admins).
NAMES_KEY = key(BASE, "names")


def owner_names_key(owner_id: str) -> str:
    """One account's names, by creation time."""
    return key(BASE, "names", "account", owner_id)


#: Names with webhook deliveries owed: name -> the time their next attempt must start by.
EVENTS_PENDING_KEY = key(BASE, "events", "pending")
