"""Registered models: names, their numbered versions and movable aliases, with their history.

A registered model is a name (one namespace for the whole service) its owner
releases models under:

* **versions** 1, 2, 3... per name, never reused (the counter outlives the
  name), each pinning one *ready* model of the name's owner with its lineage;
  a version never changes, so its model cannot be deleted while it is pinned
  (:func:`mlservice.store.model_store.pins_key`);
* **aliases** (``production``, ``staging``...) pointing at one version, or at
  a weighted split of several (a canary), maybe with a *shadow* version that
  gets a copy of each request (:mod:`.shadow`); predictions by
  ``name@alias`` follow them (:mod:`.routing`);
* a **history** of every change (:mod:`.history`).

Every change is one WATCH/MULTI/EXEC transaction that also appends its
history entry and, when the name has a webhook, marks its events pending
(:mod:`.events`): the change, its record in the history and the promise to
tell the webhook happen together or not at all. Moving an alias is one write
of one key, which each API worker hears of at once (it is tracked).

Who may see and change a registered model is decided in one place,
:func:`may_see` (with :func:`owner_of`, what a record names as its owner):
its owner, and admins. Anyone else gets 404, as for data sets and models,
except when creating a name someone else holds (409: the namespace is shared).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import redis
from msgspec import UNSET

from ..errors import Conflict, Invalid, NotFound
from ..redis_client import text
from ..security import Identity
from ..store import model_store
from ..store.catalog import Catalog
from ..store.records import ModelRecord, ModelStatus
from . import history, shadow
from .changes import MAX_TAGS, AliasChange, NewRegisteredModel, RegisteredModelChange
from .events import EVENT_GRACE_SECONDS, RegistryEvents, queue_pending
from .history import Event
from .registry_records import (
    ALIAS,
    EVENTS_PENDING_KEY,
    NAMES_KEY,
    RECORD,
    VERSION,
    AliasRecord,
    AliasView,
    Lineage,
    RegisteredModelRecord,
    RegisteredModelView,
    VersionRecord,
    VersionView,
    alias_key,
    alias_names_key,
    counter_key,
    encode,
    history_key,
    owner_names_key,
    record_key,
    shadow_key,
    version_key,
    versions_key,
    webhook_cursor_key,
    webhook_secret_key,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Called with a name whose webhook has events to send (a Celery task in practice).
Announce = Callable[[str], None]


# --- ownership: the one place ---------------------------------------------------------------


def owner_of(identity: Identity) -> str:
    """What a registered model records as its owner when ``identity`` creates it.

    The account's immutable id, as for data sets and models (a name deleted and
    created again is another account); a token from before account ids has none
    and names its user.
    """
    return identity.account_id or identity.username


def may_see(viewer: Identity, record: RegisteredModelRecord) -> bool:
    """Whether ``viewer`` may see, change and predict with a registered model: its owner,
    or an admin."""
    return viewer.is_admin or record["owner_id"] == owner_of(viewer)


# --- views ------------------------------------------------------------------------------------


def lineage(model: ModelRecord) -> Lineage:
    """Where a model came from, as a version keeps it."""
    return {
        "source": model["source"],
        "dataset_id": model.get("dataset_id"),
        "dataset_sha256": model.get("dataset_sha256"),
        "target": model.get("target"),
        "estimator": model.get("estimator"),
        "params": model.get("params"),
        "metrics": model.get("metrics"),
        "engine": model.get("engine"),
        "trained_by": model["owner"],
        "trained_at": model.get("finished_at"),
        "service_version": model.get("service_version"),
    }


def alias_view(record: AliasRecord) -> AliasView:
    """An alias as the API shows it."""
    return {
        "alias": record["alias"],
        "version": record["version"],
        "versions": record["versions"],
        "shadow": record["shadow"],
        "set_by": record["set_by"],
        "set_at": record["set_at"],
    }


def serves(record: AliasRecord, version: int) -> bool:
    """Whether the alias sends requests to ``version`` (not counting its shadow)."""
    return record["version"] == version or str(version) in (record["versions"] or {})


class Registry:
    """The registered models in Redis (see the module's docstring)."""

    def __init__(self, redis_client: redis.Redis, models: Catalog[ModelRecord]) -> None:
        self.redis = redis_client
        self.models = models
        #: The webhook deliveries owed (the delivering task's side).
        self.events = RegistryEvents(redis_client)
        #: Told of each name whose webhook has new events (set by the wiring; a no-op here).
        self.announce: Announce = lambda name: None

    # --- reading ------------------------------------------------------------------------

    def parse(self, raw: bytes | str | None, name: str, viewer: Identity) -> RegisteredModelRecord:
        """The record read from ``raw``; :class:`NotFound` if missing or not the viewer's."""
        if raw is not None:
            record = RECORD.decode(raw)
            if may_see(viewer, record):
                return record
        raise NotFound(f"no registered model {name!r}")

    def get(self, name: str, viewer: Identity) -> RegisteredModelRecord:
        """A registered model's record; 404 if there is none the viewer may see."""
        return self.parse(self.redis.get(record_key(name)), name, viewer)

    def page(
        self, viewer: Identity, page: int = 1, per_page: int = 50
    ) -> tuple[list[RegisteredModelRecord], int]:
        """One page of the viewer's registered models (admins: all), newest first."""
        index = NAMES_KEY if viewer.is_admin else owner_names_key(owner_of(viewer))
        total = self.redis.zcard(index)
        start = (page - 1) * per_page
        names = [str(text(n)) for n in self.redis.zrevrange(index, start, start + per_page - 1)]
        raws = self.redis.mget([record_key(name) for name in names]) if names else []
        return [RECORD.decode(raw) for raw in raws if raw is not None], total

    def view(self, name: str, viewer: Identity) -> RegisteredModelView:
        """The registered model with every version (lineage, aliases, shadow counts) and alias."""
        record = self.get(name, viewer)
        aliases = self._aliases(name)
        numbers = _numbers(self.redis.zrange(versions_key(name), 0, -1))
        versions = self._versions(name, numbers)
        views = self._version_views(name, versions, aliases)
        return cast(
            RegisteredModelView,
            {**record, "versions": views, "aliases": [alias_view(a) for a in aliases]},
        )

    def version(self, name: str, number: int, viewer: Identity) -> VersionView:
        """One version: its model, lineage, the aliases serving it and its shadow counts."""
        self.get(name, viewer)
        found = self._versions(name, [number])
        if not found:
            raise NotFound(f"registered model {name!r} has no version {number}")
        return self._version_views(name, found, self._aliases(name))[0]

    def alias(self, name: str, alias: str, viewer: Identity) -> AliasView:
        """Where an alias points."""
        self.get(name, viewer)
        raw = self.redis.get(alias_key(name, alias))
        if raw is None:
            raise NotFound(f"registered model {name!r} has no alias {alias!r}")
        return alias_view(ALIAS.decode(raw))

    def history(
        self, name: str, viewer: Identity, after: str | None, limit: int
    ) -> list[history.HistoryEntry]:
        """Changes to the name, oldest first: at most ``limit`` after the entry ``after``."""
        self.get(name, viewer)
        return history.read(self.redis, name, after, limit)

    def _aliases(self, name: str) -> list[AliasRecord]:
        aliases = sorted(str(text(a)) for a in self.redis.smembers(alias_names_key(name)))
        raws = self.redis.mget([alias_key(name, a) for a in aliases]) if aliases else []
        return [ALIAS.decode(raw) for raw in raws if raw is not None]

    def _versions(self, name: str, numbers: Sequence[int]) -> list[VersionRecord]:
        raws = self.redis.mget([version_key(name, n) for n in numbers]) if numbers else []
        return [VERSION.decode(raw) for raw in raws if raw is not None]

    def _version_views(
        self, name: str, versions: list[VersionRecord], aliases: list[AliasRecord]
    ) -> list[VersionView]:
        """Versions with the aliases serving them, their shadow counts and their model's
        engine as it is now (compiling may have ended after the version was added)."""
        if not versions:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for record in versions:
            pipe.hgetall(shadow_key(name, record["version"]))
            self.models.queue_get(pipe, record["model_id"])
        answers = pipe.execute()
        views = []
        for index, record in enumerate(versions):
            number = record["version"]
            counts, model_raw = answers[2 * index], answers[2 * index + 1]
            kept = record["lineage"]
            if model_raw is not None:
                kept = {
                    **kept,
                    "engine": self.models.parse(model_raw, record["model_id"]).get(
                        "engine", kept["engine"]
                    ),
                }
            views.append(
                cast(
                    VersionView,
                    {
                        **record,
                        "lineage": kept,
                        "aliases": [a["alias"] for a in aliases if serves(a, number)],
                        "shadow": shadow.counts(counts) if counts else None,
                    },
                )
            )
        return views

    # --- changing: one transaction each ---------------------------------------------------

    def _transact(self, watched: Sequence[str], plan: Callable[[redis.client.Pipeline], T]) -> T:
        """Run ``plan`` under WATCH of ``watched`` until it commits; its value.

        ``plan`` reads (the pipeline answers at once while watching), raises to refuse,
        then calls ``pipe.multi()`` and queues the writes, its history entry with them.
        """
        return cast(T, self.redis.transaction(cast(Any, plan), *watched, value_from_callable=True))

    def create(self, creator: Identity, body: NewRegisteredModel) -> RegisteredModelRecord:
        """A new registered model → its record; 409 if the name is taken (by anyone)."""
        name, now = body.name, time.time()
        record: RegisteredModelRecord = {
            "name": name,
            "owner": creator.username,
            "owner_id": owner_of(creator),
            "description": body.description,
            "tags": dict(body.tags),
            "webhook_url": body.webhook_url,
            "latest_version": None,
            "created_at": now,
            "updated_at": now,
        }

        def plan(pipe: redis.client.Pipeline) -> RegisteredModelRecord:
            if pipe.exists(record_key(name)):
                raise taken(name)
            pipe.multi()
            self._queue_new(pipe, record, creator.username, body.webhook_secret)
            return record

        return self._transact([record_key(name)], plan)

    def _queue_new(
        self,
        pipe: redis.client.Pipeline,
        record: RegisteredModelRecord,
        actor: str,
        webhook_secret: str | None,
    ) -> None:
        """Queue a new registered model's writes: record, indexes, webhook, first entry."""
        name, now = record["name"], record["created_at"]
        pipe.set(record_key(name), encode(record))
        pipe.zadd(NAMES_KEY, {name: now})
        pipe.zadd(owner_names_key(record["owner_id"]), {name: now})
        if record["webhook_url"] and webhook_secret:
            pipe.set(webhook_secret_key(name), webhook_secret)
            pipe.set(webhook_cursor_key(name), "0-0")  # every event from the first one
        after = {
            "description": record["description"],
            "tags": record["tags"],
            "webhook_url": record["webhook_url"],
        }
        history.queue_event(pipe, name, Event.CREATED, actor, after=after)

    def update(
        self, name: str, editor: Identity, change: RegisteredModelChange
    ) -> RegisteredModelRecord:
        """Change the description, tags (merged; ``null`` removes one), webhook or prediction
        log; each change its own history entry, all in one transaction."""

        def plan(pipe: redis.client.Pipeline) -> RegisteredModelRecord:
            record = self.parse(pipe.get(record_key(name)), name, editor)
            changed = cast(RegisteredModelRecord, dict(record))
            entries: list[tuple[Event, Any, Any]] = []
            if change.description is not UNSET and change.description != record["description"]:
                changed["description"] = change.description
                entries.append(
                    (Event.DESCRIPTION_CHANGED, record["description"], change.description)
                )
            if change.tags is not UNSET:
                tags = {**record["tags"], **change.tags}
                tags = {k: v for k, v in tags.items() if v is not None}
                if len(tags) > MAX_TAGS:
                    raise Invalid(
                        f"registered model {name!r} would have {len(tags)} tags; at most "
                        f"{MAX_TAGS}: remove some (a tag set to null is removed)"
                    )
                if tags != record["tags"]:
                    changed["tags"] = cast(dict[str, str], tags)
                    entries.append((Event.TAGS_CHANGED, record["tags"], tags))
            logged = record.get("log_predictions", False)
            if change.log_predictions is not UNSET and change.log_predictions != logged:
                changed["log_predictions"] = change.log_predictions
                entries.append((Event.LOG_PREDICTIONS_CHANGED, logged, change.log_predictions))
            webhook_set = change.webhook_url is not UNSET
            if webhook_set:
                changed["webhook_url"] = cast(str | None, change.webhook_url)
                if change.webhook_url != record["webhook_url"]:
                    entries.append(
                        (Event.WEBHOOK_CHANGED, record["webhook_url"], change.webhook_url)
                    )
            # Events before a webhook existed are not sent: its cursor starts at the end.
            start_at = (
                history.last_id(pipe, name) if webhook_set and not record["webhook_url"] else None
            )
            pipe.multi()
            if entries:
                changed["updated_at"] = time.time()
                pipe.set(record_key(name), encode(changed))
            if webhook_set:
                if change.webhook_url is None:
                    pipe.delete(webhook_secret_key(name), webhook_cursor_key(name))
                else:
                    pipe.set(webhook_secret_key(name), cast(str, change.webhook_secret))
                    if start_at is not None or not record["webhook_url"]:
                        pipe.set(webhook_cursor_key(name), start_at or "0-0")
            for event, before, after in entries:
                history.queue_event(pipe, name, event, editor.username, before=before, after=after)
            self._queue_announcement(pipe, changed, [event for event, _, _ in entries])
            return changed

        result = self._transact([record_key(name), history_key(name)], plan)
        self._announce(result)
        return result

    def delete(self, name: str, viewer: Identity) -> None:
        """Delete a registered model, its versions (their models unpinned) and its history;
        409 while it has aliases (a client may still be using them)."""
        self._delete(name, viewer, force=False)

    def delete_owned(self, owner_id: str) -> int:
        """Delete every registered model of an account being deleted (by its account id),
        aliases and all; how many went."""
        names = [str(text(n)) for n in self.redis.zrange(owner_names_key(owner_id), 0, -1)]
        system = Identity("account deletion", "admin")
        deleted = 0
        for name in names:
            try:
                self._delete(name, system, force=True)
            except NotFound:
                continue
            deleted += 1
        return deleted

    def _delete(self, name: str, viewer: Identity, force: bool) -> None:
        def plan(pipe: redis.client.Pipeline) -> None:
            record = self.parse(pipe.get(record_key(name)), name, viewer)
            aliases = sorted(str(text(a)) for a in pipe.smembers(alias_names_key(name)))
            if aliases and not force:
                raise Conflict(
                    f"registered model {name!r} still has alias(es) {', '.join(aliases)}: a "
                    f"client may be predicting with them; remove each first "
                    f"(DELETE /resource/registry/{name}/aliases/<alias>)"
                )
            numbers = _numbers(pipe.zrange(versions_key(name), 0, -1))
            raws = pipe.mget([version_key(name, n) for n in numbers]) if numbers else []
            versions = [VERSION.decode(raw) for raw in raws if raw is not None]
            pipe.multi()
            for version in versions:
                member = model_store.pin_member(name, version["version"])
                pipe.srem(model_store.pins_key(version["model_id"]), member)
            pipe.delete(
                record_key(name),
                versions_key(name),
                alias_names_key(name),
                history_key(name),
                webhook_secret_key(name),
                webhook_cursor_key(name),
                *(alias_key(name, alias) for alias in aliases),
                *(version_key(name, n) for n in numbers),
                *(shadow_key(name, n) for n in numbers),
            )
            pipe.zrem(NAMES_KEY, name)
            pipe.zrem(owner_names_key(record["owner_id"]), name)
            pipe.zrem(EVENTS_PENDING_KEY, name)

        self._transact([record_key(name), alias_names_key(name), versions_key(name)], plan)
        log.info("registered model %s deleted by %s", name, viewer.username)

    # --- versions --------------------------------------------------------------------------

    def add_version(self, name: str, actor: Identity, model_id: str) -> VersionRecord:
        """The model (ready, of the name's owner) becomes the name's next version."""

        def plan(pipe: redis.client.Pipeline) -> tuple[VersionRecord, RegisteredModelRecord]:
            record = self.parse(pipe.get(record_key(name)), name, actor)
            model = self.models.parse(pipe.get(self.models.key(model_id)), model_id, actor)
            number = self._next_number(pipe, record, model)
            pipe.multi()
            return self._queue_version(pipe, record, model, number, actor.username)

        watched = [record_key(name), self.models.key(model_id), counter_key(name)]
        version, record = self._transact(watched, plan)
        self._announce(record)
        return version

    def register_trained(self, model: ModelRecord) -> VersionRecord:
        """A model trained with ``register_as`` is ready: it becomes the next version of
        that name, created (owned by the model's owner) if missing.

        Idempotent: a model already a version of the name gets that version back (a
        training task delivered again). 409 if the name belongs to another account.
        """
        name, model_id = cast(str, model.get("register_as")), model["id"]

        def plan(pipe: redis.client.Pipeline) -> tuple[VersionRecord, RegisteredModelRecord | None]:
            for member in pipe.smembers(model_store.pins_key(model_id)):
                pinned_name, _, pinned = str(text(member)).rpartition(":")
                if pinned_name == name:
                    raw = pipe.get(version_key(name, int(pinned)))
                    if raw is not None:
                        return VERSION.decode(raw), None  # added before: nothing to announce
            raw = pipe.get(record_key(name))
            current = self.models.parse(pipe.get(self.models.key(model_id)), model_id)
            if raw is None:
                now = time.time()
                record: RegisteredModelRecord = {
                    "name": name,
                    "owner": model["owner"],
                    "owner_id": model["owner_id"],
                    "description": "",
                    "tags": {},
                    "webhook_url": None,
                    "latest_version": None,
                    "created_at": now,
                    "updated_at": now,
                }
                number = self._next_number(pipe, record, current)
                pipe.multi()
                self._queue_new(pipe, record, model["owner"], None)
            else:
                record = RECORD.decode(raw)
                if record["owner_id"] != current["owner_id"]:
                    raise taken(name)
                number = self._next_number(pipe, record, current)
                pipe.multi()
            return self._queue_version(pipe, record, current, number, model["owner"])

        watched = [record_key(name), self.models.key(model_id), counter_key(name)]
        watched.append(model_store.pins_key(model_id))
        version, record = self._transact(watched, plan)
        if record is not None:
            self._announce(record)
        return version

    def check_registrable(self, name: str, owner: Identity) -> None:
        """At a training request with ``register_as``: 409 if the name belongs to another
        account (the model could never become its version)."""
        raw = self.redis.get(record_key(name))
        if raw is not None and RECORD.decode(raw)["owner_id"] != owner_of(owner):
            raise taken(name)

    def _next_number(
        self, pipe: redis.client.Pipeline, record: RegisteredModelRecord, model: ModelRecord
    ) -> int:
        """The number the model would get, after checking it may be pinned (read under
        WATCH of the counter, so two versions never get one number)."""
        if model["owner_id"] != record["owner_id"]:
            raise Conflict(
                f"model {model['id']!r} belongs to another account than registered model "
                f"{record['name']!r}: a version pins a model of the registered model's owner"
            )
        if model["status"] != ModelStatus.READY:
            raise Conflict(
                f"model {model['id']!r} is {model['status']}, not ready: a version pins a "
                "ready model; add it once its training has finished"
            )
        return int(pipe.get(counter_key(record["name"])) or 0) + 1

    def _queue_version(
        self,
        pipe: redis.client.Pipeline,
        record: RegisteredModelRecord,
        model: ModelRecord,
        number: int,
        actor: str,
    ) -> tuple[VersionRecord, RegisteredModelRecord]:
        """Queue a new version's writes (after ``pipe.multi()``): its record, the counter,
        the pin on its model, the name's latest version, the history entry; the version
        and the name's record as they will be."""
        name = record["name"]
        version: VersionRecord = {
            "name": name,
            "version": number,
            "model_id": model["id"],
            "registered_by": actor,
            "registered_at": time.time(),
            "lineage": lineage(model),
        }
        changed = cast(RegisteredModelRecord, {**record, "latest_version": number})
        changed["updated_at"] = version["registered_at"]
        pipe.set(counter_key(name), number)
        pipe.set(version_key(name, number), encode(version))
        pipe.zadd(versions_key(name), {str(number): number})
        pipe.sadd(model_store.pins_key(model["id"]), model_store.pin_member(name, number))
        pipe.set(record_key(name), encode(changed))
        after = {"version": number, "model_id": model["id"]}
        history.queue_event(pipe, name, Event.VERSION_ADDED, actor, after=after, version=number)
        self._queue_announcement(pipe, changed, [Event.VERSION_ADDED])
        return version, changed

    # --- aliases ---------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, actor: Identity, change: AliasChange) -> AliasView:
        """Point ``alias`` at a version or a split (maybe with a shadow): one write, with its
        history entry. Setting it where it already points changes nothing."""
        weights = change.weights()
        named = [*weights, *([change.shadow] if change.shadow is not None else [])]

        def plan(pipe: redis.client.Pipeline) -> tuple[AliasView, RegisteredModelRecord | None]:
            record = self.parse(pipe.get(record_key(name)), name, actor)
            raws = pipe.mget([version_key(name, n) for n in named])
            missing = [n for n, raw in zip(named, raws, strict=True) if raw is None]
            if missing:
                existing = _numbers(pipe.zrange(versions_key(name), 0, -1))
                raise Invalid(
                    f"registered model {name!r} has no version {', '.join(map(str, missing))}; "
                    f"its versions: {', '.join(map(str, existing)) or 'none yet'}"
                )
            models = {
                str(n): VERSION.decode(cast(bytes, raw))["model_id"]
                for n, raw in zip(named, raws, strict=True)
            }
            old_raw = pipe.get(alias_key(name, alias))
            before = ALIAS.decode(old_raw) if old_raw is not None else None
            target: AliasRecord = {
                "alias": alias,
                "version": change.version,
                "versions": (
                    {str(n): w for n, w in weights.items()} if change.versions is not None else None
                ),
                "shadow": change.shadow,
                "models": models,
                "set_by": actor.username,
                "set_at": time.time(),
            }
            if before is not None and _same_target(before, target):
                return alias_view(before), None  # nothing changed: nothing to announce
            event = Event.ALIAS_SET if before is None else Event.ALIAS_MOVED
            pipe.multi()
            pipe.set(alias_key(name, alias), encode(target))
            pipe.sadd(alias_names_key(name), alias)
            history.queue_event(
                pipe,
                name,
                event,
                actor.username,
                before=alias_view(before) if before is not None else None,
                after=alias_view(target),
                alias=alias,
            )
            self._queue_announcement(pipe, record, [event])
            return alias_view(target), record

        view, record = self._transact([record_key(name), alias_key(name, alias)], plan)
        if record is not None:
            self._announce(record)
        return view

    def remove_alias(self, name: str, alias: str, actor: Identity) -> None:
        """Remove an alias (predictions by it are 404 from the moment this returns)."""

        def plan(pipe: redis.client.Pipeline) -> RegisteredModelRecord:
            record = self.parse(pipe.get(record_key(name)), name, actor)
            old_raw = pipe.get(alias_key(name, alias))
            if old_raw is None:
                raise NotFound(f"registered model {name!r} has no alias {alias!r}")
            pipe.multi()
            pipe.delete(alias_key(name, alias))
            pipe.srem(alias_names_key(name), alias)
            before = alias_view(ALIAS.decode(old_raw))
            history.queue_event(
                pipe, name, Event.ALIAS_REMOVED, actor.username, before=before, alias=alias
            )
            self._queue_announcement(pipe, record, [Event.ALIAS_REMOVED])
            return record

        self._announce(self._transact([record_key(name), alias_key(name, alias)], plan))

    # --- webhook events -------------------------------------------------------------------

    @staticmethod
    def _queue_announcement(
        pipe: redis.client.Pipeline, record: RegisteredModelRecord, events: list[Event]
    ) -> None:
        """In the change's transaction: the name's webhook has events to send."""
        if record["webhook_url"] and any(e in history.WEBHOOK_EVENTS for e in events):
            queue_pending(pipe, record["name"], time.time() + EVENT_GRACE_SECONDS)

    def _announce(self, record: RegisteredModelRecord) -> None:
        """After the change committed: send the webhook its events now (if this fails, the
        sweep sends them: they are pending in Redis)."""
        if record["webhook_url"]:
            try:
                self.announce(record["name"])
            except Exception:
                log.exception("registry events of %s not sent now; the sweep will", record["name"])


def _numbers(members: Any) -> list[int]:
    """Version numbers as a sorted set gives them back."""
    return [int(str(text(member))) for member in members]


def taken(name: str) -> Conflict:
    """409 for a name another account holds (names are one namespace for the whole service)."""
    return Conflict(
        f"the name {name!r} is taken: registered model names are one namespace for the whole "
        "service; choose another"
    )


def _same_target(one: AliasRecord, other: AliasRecord) -> bool:
    return (one["version"], one["versions"], one["shadow"]) == (
        other["version"],
        other["versions"],
        other["shadow"],
    )
