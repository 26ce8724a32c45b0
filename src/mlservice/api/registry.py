"""``/resource/registry``: registered models, their versions and aliases, history, and
predictions by name (``name@alias`` or ``name/versions/<n>``).

Thin: parse, call :mod:`mlservice.registry`, answer. A prediction by name goes
through the same path as ``/resource/models/<id>/predict``
(:func:`~mlservice.api.predict.predict_with`, every body and answer format),
with :class:`NamedTarget` picking the model from the worker's remembered reads
(no Redis round trip in the common case) and answering with
``X-Registry-Version`` and ``X-Model-Id``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flask import Blueprint, Response, g, jsonify, request, url_for

from .. import telemetry
from ..bodies import decode
from ..context import ServiceContext
from ..errors import BadRequest, NotFound
from ..registry import routing
from ..registry.changes import (
    AliasChange,
    NewRegisteredModel,
    NewVersion,
    RegisteredModelChange,
    check_webhook_pair,
)
from ..registry.history import ENTRY_ID
from ..registry.routing import Route
from ..security import Identity
from ..serving.cache import ModelNotPublished
from ..serving.hot_reads import access_read, version_read
from ..serving.predictor import Predictor
from ..store import published, user_records
from ..training import callbacks
from .auth import admit, current_identity, require_token
from .parsing import json_body, page_args
from .predict import predict_with
from .services import services

bp = Blueprint("registry", __name__, url_prefix="/resource/registry")

#: History entries per answer: the default, and the most a client may ask for.
HISTORY_LIMIT = 500
HISTORY_MAX = 10_000


def _check_webhook(url: str | None) -> None:
    """422 for a webhook URL the service would not call (the training callback's rules)."""
    if url is not None:
        allow_private = services().settings.service.callback_allow_private
        callbacks.check_url(url, allow_private, field="webhook_url")


@bp.post("")
@require_token()
def create() -> Response:
    """A new registered model → 201 its record; 409 if the name is taken, by anyone."""
    body = decode(json_body(), NewRegisteredModel)
    check_webhook_pair(body.webhook_url, body.webhook_secret)
    _check_webhook(body.webhook_url)
    record = services().registry.create(current_identity(), body)
    response = jsonify(record)
    response.status_code = 201
    response.headers["Location"] = url_for("registry.show", name=record["name"])
    return response


@bp.get("")
@require_token()
def list_names() -> Response:
    """Your registered models (admins: everyone's), newest first, paged."""
    page, per_page = page_args()
    records, total = services().registry.page(current_identity(), page, per_page)
    return jsonify(registered_models=records, page=page, per_page=per_page, total=total)


@bp.get("/<regname:name>")
@require_token()
def show(name: str) -> Response:
    """The registered model with its versions (lineage, shadow counts) and aliases."""
    return jsonify(services().registry.view(name, current_identity()))


@bp.patch("/<regname:name>")
@require_token()
def update(name: str) -> Response:
    """Change the description, tags or webhook → the record."""
    change = decode(json_body(), RegisteredModelChange)
    check_webhook_pair(change.webhook_url, change.webhook_secret)
    if isinstance(change.webhook_url, str):
        _check_webhook(change.webhook_url)
    return jsonify(services().registry.update(name, current_identity(), change))


@bp.delete("/<regname:name>")
@require_token()
def delete(name: str) -> tuple[str, int]:
    """Delete the registered model (its versions' models may then be deleted) → 204;
    409 while it has aliases."""
    services().registry.delete(name, current_identity())
    return "", 204


@bp.post("/<regname:name>/versions")
@require_token()
def add_version(name: str) -> Response:
    """A ready model of yours becomes the next version → 201 the version."""
    body = decode(json_body(), NewVersion)
    ctx = services()
    identity = current_identity()
    version = ctx.registry.add_version(name, identity, body.model_id)
    response = jsonify(ctx.registry.version(name, version["version"], identity))
    response.status_code = 201
    response.headers["Location"] = url_for(
        "registry.show_version", name=name, version=version["version"]
    )
    return response


@bp.get("/<regname:name>/versions/<version:version>")
@require_token()
def show_version(name: str, version: int) -> Response:
    """One version: model, lineage, the aliases serving it, shadow counts."""
    return jsonify(services().registry.version(name, version, current_identity()))


@bp.put("/<regname:name>/aliases/<alias:alias>")
@require_token()
def set_alias(name: str, alias: str) -> Response:
    """Point the alias at a version or a split (maybe with a shadow) → the alias.

    Once this has answered, no API worker serves the old version for it.
    """
    change = decode(json_body(), AliasChange)
    return jsonify(services().registry.set_alias(name, alias, current_identity(), change))


@bp.get("/<regname:name>/aliases/<alias:alias>")
@require_token()
def show_alias(name: str, alias: str) -> Response:
    """Where the alias points."""
    return jsonify(services().registry.alias(name, alias, current_identity()))


@bp.delete("/<regname:name>/aliases/<alias:alias>")
@require_token()
def remove_alias(name: str, alias: str) -> tuple[str, int]:
    """Remove the alias → 204 (predictions by it are 404 from then on)."""
    services().registry.remove_alias(name, alias, current_identity())
    return "", 204


@bp.get("/<regname:name>/history")
@require_token()
def show_history(name: str) -> Response:
    """Every change, oldest first: ``?limit=`` entries after ``?after=<id>``, and ``next``
    (the last id, to ask for more; ``null`` at the end)."""
    after = request.args.get("after") or None
    if after is not None and not ENTRY_ID.fullmatch(after):
        raise BadRequest(
            "query parameter 'after' must be a history entry id (<milliseconds>-<sequence>, "
            "e.g. 1795425777600-0) from an earlier answer"
        )
    raw_limit = request.args.get("limit", str(HISTORY_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= HISTORY_MAX:
        raise BadRequest(f"query parameter 'limit' must be an integer from 1 to {HISTORY_MAX}")
    limit = int(raw_limit)
    entries = services().registry.history(name, current_identity(), after, limit)
    following = entries[-1]["id"] if len(entries) == limit else None
    return jsonify(name=name, history=entries, next=following)


# --- predictions by name ------------------------------------------------------------------


class NamedTarget:
    """A prediction by ``name@alias`` or ``name/versions/<n>``: the route from the worker's
    remembered reads, the version's headers, a copy to the shadow version."""

    def __init__(self, name: str, alias: str | None = None, version: int | None = None) -> None:
        self.name, self.alias, self.version = name, alias, version
        self.route: Route | None = None
        self.predictor: Predictor | None = None
        self.shadow_version: int | None = None
        self.ctx: ServiceContext | None = None

    def admit(self, ctx: ServiceContext, claimed: Identity) -> tuple[int, Predictor]:
        """Token and name checked and the version picked, from remembered reads (one
        round trip for what is not remembered, a second for the model's version)."""
        name = self.name
        named = (
            routing.alias_read(name, self.alias)
            if self.alias is not None
            else routing.version_read(name, self.version or 0)
        )
        access, record, target = ctx.hot.values(
            [access_read(claimed.username), routing.record_read(name), named]
        )
        admit(claimed, user_records.parse_access(access))
        viewer = current_identity()
        if self.alias is not None:
            route = routing.by_alias(viewer, name, self.alias, record, target)
        else:
            route = routing.by_version(viewer, name, self.version or 0, record, target)
        wanted = [version_read(route.model_id), ctx.hot.record_read(route.model_id)]
        if route.shadow is not None:
            wanted.append(version_read(route.shadow[1]))
        versions = ctx.hot.values(wanted)
        if route.shadow is not None:
            self.shadow_version = published.parse_version(versions[2])
        # Its prediction log (or drift sample), if the name's or the model's is on.
        model = ctx.models.catalog.parse_shared(versions[1], route.model_id)
        g.watched_model = (route.model_id, route.logged or model.get("log_predictions", False))
        try:
            published_version, predictor = ctx.cache.get(
                route.model_id, published.parse_version(versions[0])
            )
        except ModelNotPublished:  # a version pins its model: only a race with a delete
            raise NotFound(
                f"version {route.version} of {name!r}: its model {route.model_id!r} is gone"
            ) from None
        self.ctx, self.route, self.predictor = ctx, route, predictor
        return published_version, predictor

    def answered(self, response: Response, columns: dict[str, np.ndarray], raw: Any) -> None:
        """The version's headers; the metrics; a copy of the request for the shadow."""
        route, ctx, predictor = self.route, self.ctx, self.predictor
        assert route is not None and ctx is not None and predictor is not None
        response.headers["X-Registry-Version"] = str(route.version)
        response.headers["X-Model-Id"] = route.model_id
        telemetry.registry_prediction(route.name, route.version)
        if route.shadow is not None:
            number, model_id = route.shadow
            ctx.shadow.submit(
                route.name,
                number,
                model_id,
                self.shadow_version,
                predictor.bundle,
                raw,
                columns,
            )


@bp.post("/<regname:name>@<alias:alias>/predict")
def predict_alias(name: str, alias: str) -> Response:
    """Predict with the version ``alias`` points at (a split: one drawn by weight); same
    bodies and answers as ``/resource/models/<id>/predict``."""
    return predict_with("", user_model=True, target=NamedTarget(name, alias=alias))


@bp.post("/<regname:name>/versions/<version:version>/predict")
def predict_version(name: str, version: int) -> Response:
    """Predict with one version; same bodies and answers as ``/resource/models/<id>/predict``."""
    return predict_with("", user_model=True, target=NamedTarget(name, version=version))
