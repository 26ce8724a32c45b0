"""The registry's routes through Flask's test client: what they refuse, store and record.

Models are recorded ``ready`` straight in the catalog (no worker trains here):
what a version pins and what the registry refuses does not need a fitted
model. Predictions by name, which do, are the integration tier's
(tests/integration/test_registry.py).
"""

from __future__ import annotations

import itertools

import pytest

from mlservice.celery_app import TRAINING_QUEUE
from mlservice.registry.registry_records import owner_names_key
from mlservice.store.records import ModelSource, ModelStatus
from tests.route.conftest import token_for

_names = itertools.count()


def account(ctx, prefix: str) -> tuple[str, dict[str, str]]:
    """A new user's name and Authorization header (each test uses names of its own)."""
    name = f"{prefix}{next(_names)}"
    ctx.accounts.create(name, "p" * 12)
    return name, token_for(ctx, name)


@pytest.fixture(scope="module")
def user(ctx):
    return account(ctx, "rg-user")


@pytest.fixture(scope="module")
def other(ctx):
    return account(ctx, "rg-other")


def fresh_name() -> str:
    return f"churn-{next(_names)}"


def account_id(ctx, username: str) -> str:
    access = ctx.accounts.current_access(username)
    assert access is not None, username
    return access.account_id


def ready_model(ctx, owner: str, status: str = ModelStatus.READY) -> str:
    """A model record of ``owner`` in the catalog, as training leaves it (no bundle)."""
    model_id = ctx.models.catalog.new_id()
    ctx.models.catalog.create(
        {
            "id": model_id,
            "name": "LogisticRegression on plan",
            "owner": owner,
            "owner_id": account_id(ctx, owner),
            "status": status,
            "source": ModelSource.TRAINED,
            "dataset_id": "d" * 32,
            "target": "plan",
            "estimator": "LogisticRegression",
            "params": {"C": 0.5},
            "metrics": {"accuracy": 0.75},
            "finished_at": 1795425779.5,
            "dataset_sha256": "ab" * 32,
            "service_version": "0.9.0",
        }
    )
    return model_id


def create(http, headers, name: str, **fields) -> dict:
    answer = http.post("/resource/registry", headers=headers, json={"name": name, **fields})
    assert answer.status_code == 201, answer.get_json()
    assert answer.headers["Location"] == f"/resource/registry/{name}"
    return answer.get_json()


def add(http, headers, name: str, model_id: str) -> dict:
    answer = http.post(
        f"/resource/registry/{name}/versions", headers=headers, json={"model_id": model_id}
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def refused(answer, status: int, message: str) -> None:
    assert (answer.status_code, answer.get_json()) == (status, {"status": message})


def test_a_name_is_created_once_for_the_whole_service(http, ctx, user, other):
    name = fresh_name()
    record = create(http, user[1], name, description="churn model", tags={"team": "risk"})
    assert record["owner"] == user[0] and record["latest_version"] is None
    assert record["tags"] == {"team": "risk"} and record["webhook_url"] is None
    refused(
        http.post("/resource/registry", headers=other[1], json={"name": name}),
        409,
        f"the name {name!r} is taken: registered model names are one namespace for the whole "
        "service; choose another",
    )
    listed = http.get("/resource/registry", headers=user[1]).get_json()
    assert listed["registered_models"][0]["name"] == name  # newest first
    mine = ctx.redis.zrange(owner_names_key(account_id(ctx, user[0])), 0, -1)
    assert listed["total"] == len(mine)
    theirs = http.get("/resource/registry?per_page=500", headers=other[1]).get_json()
    assert name not in [r["name"] for r in theirs["registered_models"]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"name": "-churn"},
            "'name' must be 1-64 letters, digits or '.', '_', '-', starting with a letter or digit",
        ),
        (
            {"name": "a" * 65},
            "'name' must be 1-64 letters, digits or '.', '_', '-', starting with a letter or digit",
        ),
        (
            {"name": "churn", "colour": "red"},
            "unknown field(s) 'colour'; known: name, description, tags, webhook_url, "
            "webhook_secret",
        ),
        (
            {"name": "churn", "tags": {"team": 3}},
            "'tags' must be a JSON object of at most 50 tags: keys of 1-64 letters, digits or "
            "'_', '.', ':', '/', '-'; values strings of at most 256 characters",
        ),
        ({}, "'name' is required"),
    ],
)
def test_a_new_name_is_checked_field_by_field(http, user, body, message):
    refused(http.post("/resource/registry", headers=user[1], json=body), 400, message)


def test_a_webhook_needs_its_secret_and_a_public_address(http, user):
    name = fresh_name()
    refused(
        http.post(
            "/resource/registry",
            headers=user[1],
            json={"name": name, "webhook_url": "https://hooks.example.com/x"},
        ),
        422,
        "'webhook_secret' (16 to 256 characters) is required with 'webhook_url': each "
        "delivery is signed with it so your receiver can check it came from this service",
    )
    refused(
        http.post(
            "/resource/registry",
            headers=user[1],
            json={"name": name, "webhook_url": "http://127.0.0.1:9/x", "webhook_secret": "s" * 16},
        ),
        422,
        "webhook_url host '127.0.0.1' resolves to non-public address 127.0.0.1; set "
        "MLSERVICE_CALLBACK_ALLOW_PRIVATE=1 to allow it",
    )
    assert http.get(f"/resource/registry/{name}", headers=user[1]).status_code == 404


def test_versions_are_numbered_pinned_and_never_reused(http, ctx, user):
    name = fresh_name()
    create(http, user[1], name)
    first, second = ready_model(ctx, user[0]), ready_model(ctx, user[0])
    one = add(http, user[1], name, first)
    assert (one["version"], one["model_id"], one["registered_by"]) == (1, first, user[0])
    assert one["lineage"] == {
        "source": "trained",
        "dataset_id": "d" * 32,
        "dataset_sha256": "ab" * 32,
        "target": "plan",
        "estimator": "LogisticRegression",
        "params": {"C": 0.5},
        "metrics": {"accuracy": 0.75},
        "engine": None,
        "trained_by": user[0],
        "trained_at": 1795425779.5,
        "service_version": "0.9.0",
    }
    assert (one["aliases"], one["shadow"]) == ([], None)
    assert add(http, user[1], name, second)["version"] == 2
    # A pinned model cannot be deleted.
    refused(
        http.delete(f"/resource/models/{first}", headers=user[1]),
        409,
        f"model {first!r} is version 1 of {name!r} in the registry, and a registered version "
        f"never changes: delete the registered model first (remove its aliases, then "
        f"DELETE /resource/registry/{name})",
    )
    # Deleting the name unpins them; a name made again goes on counting.
    assert http.delete(f"/resource/registry/{name}", headers=user[1]).status_code == 204
    assert http.delete(f"/resource/models/{second}", headers=user[1]).status_code == 204
    create(http, user[1], name)
    assert add(http, user[1], name, first)["version"] == 3
    assert http.get(f"/resource/registry/{name}", headers=user[1]).get_json()["latest_version"] == 3
    history = http.get(f"/resource/registry/{name}/history", headers=user[1]).get_json()
    assert [e["event"] for e in history["history"]] == ["created", "version_added"]


def test_only_a_ready_model_of_the_names_owner_becomes_a_version(http, ctx, user, other, admin):
    name = fresh_name()
    create(http, user[1], name)
    training = ready_model(ctx, user[0], status=ModelStatus.TRAINING)
    refused(
        http.post(
            f"/resource/registry/{name}/versions", headers=user[1], json={"model_id": training}
        ),
        409,
        f"model {training!r} is training, not ready: a version pins a ready model; add it once "
        "its training has finished",
    )
    theirs = ready_model(ctx, other[0])
    refused(
        http.post(
            f"/resource/registry/{name}/versions", headers=user[1], json={"model_id": theirs}
        ),
        404,
        f"no model {theirs!r}",
    )
    refused(  # an admin sees both, but a version pins a model of the name's owner
        http.post(f"/resource/registry/{name}/versions", headers=admin, json={"model_id": theirs}),
        409,
        f"model {theirs!r} belongs to another account than registered model {name!r}: a "
        "version pins a model of the registered model's owner",
    )
    refused(
        http.post(f"/resource/registry/{name}/versions", headers=user[1], json={"model_id": "x"}),
        400,
        "'model_id' must be a model id (32 hexadecimal digits)",
    )


def test_another_users_registered_model_is_not_found_on_every_route(http, ctx, user, other):
    name = fresh_name()
    create(http, user[1], name)
    add(http, user[1], name, ready_model(ctx, user[0]))
    body = {"version": 1}
    assert (
        http.put(f"/resource/registry/{name}/aliases/prod", headers=user[1], json=body).status_code
        == 200
    )
    missing = {"status": f"no registered model {name!r}"}
    for method, path, json in [
        ("GET", f"/resource/registry/{name}", None),
        ("PATCH", f"/resource/registry/{name}", {"description": "mine"}),
        ("DELETE", f"/resource/registry/{name}", None),
        ("POST", f"/resource/registry/{name}/versions", {"model_id": ready_model(ctx, other[0])}),
        ("GET", f"/resource/registry/{name}/versions/1", None),
        ("PUT", f"/resource/registry/{name}/aliases/prod", {"version": 1}),
        ("GET", f"/resource/registry/{name}/aliases/prod", None),
        ("DELETE", f"/resource/registry/{name}/aliases/prod", None),
        ("GET", f"/resource/registry/{name}/history", None),
    ]:
        answer = http.open(path, method=method, headers=other[1], json=json)
        assert (answer.status_code, answer.get_json()) == (404, missing), (method, path)


def test_aliases_move_atomically_with_their_history(http, ctx, user):
    name = fresh_name()
    create(http, user[1], name)
    for _ in range(3):
        add(http, user[1], name, ready_model(ctx, user[0]))
    path = f"/resource/registry/{name}/aliases/production"
    first = http.put(path, headers=user[1], json={"version": 1}).get_json()
    assert (first["alias"], first["version"], first["versions"], first["shadow"]) == (
        "production",
        1,
        None,
        None,
    )
    split = http.put(path, headers=user[1], json={"versions": {"1": 90, "2": 10}, "shadow": 3})
    assert split.status_code == 200
    assert (split.get_json()["version"], split.get_json()["versions"]) == (None, {"1": 90, "2": 10})
    same = http.put(path, headers=user[1], json={"versions": {"1": 90, "2": 10}, "shadow": 3})
    assert same.get_json() == split.get_json()  # nothing changed: no history entry
    assert http.get(path, headers=user[1]).get_json() == split.get_json()
    view = http.get(f"/resource/registry/{name}/versions/2", headers=user[1]).get_json()
    assert view["aliases"] == ["production"]
    refused(
        http.delete(f"/resource/registry/{name}", headers=user[1]),
        409,
        f"registered model {name!r} still has alias(es) production: a client may be predicting "
        f"with them; remove each first (DELETE /resource/registry/{name}/aliases/<alias>)",
    )
    assert http.delete(path, headers=user[1]).status_code == 204
    refused(
        http.get(path, headers=user[1]), 404, f"registered model {name!r} has no alias 'production'"
    )
    entries = http.get(f"/resource/registry/{name}/history", headers=user[1]).get_json()["history"]
    assert [(e["event"], e["alias"], e["version"]) for e in entries] == [
        ("created", None, None),
        ("version_added", None, 1),
        ("version_added", None, 2),
        ("version_added", None, 3),
        ("alias_set", "production", None),
        ("alias_moved", "production", None),
        ("alias_removed", "production", None),
    ]
    moved = entries[5]
    assert moved["actor"] == user[0]
    assert (moved["before"]["version"], moved["after"]["versions"], moved["after"]["shadow"]) == (
        1,
        {"1": 90, "2": 10},
        3,
    )
    assert (entries[6]["before"]["shadow"], entries[6]["after"]) == (3, None)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {"version": 1, "versions": {"1": 1}},
            422,
            "send either 'version' (one version) or 'versions' (a split, e.g. "
            '{"3": 90, "4": 10}), not both and not neither',
        ),
        (
            {},
            422,
            "send either 'version' (one version) or 'versions' (a split, e.g. "
            '{"3": 90, "4": 10}), not both and not neither',
        ),
        (
            {"version": 1, "shadow": 1},
            422,
            "version 1 cannot be both served and the shadow: a shadow version gets copies of "
            "requests another version answers",
        ),
        ({"version": 7}, 422, "registered model {name!r} has no version 7; its versions: 1"),
        (
            {"versions": {"01": 5}},
            400,
            "'versions' must be a JSON object of 1 to 10 version numbers (as strings) to integer "
            'weights from 1 to 1000000, e.g. {"3": 90, "4": 10}',
        ),
        (
            {"versions": {"1": 0}},
            400,
            "'versions' must be a JSON object of 1 to 10 version numbers (as strings) to integer "
            'weights from 1 to 1000000, e.g. {"3": 90, "4": 10}',
        ),
        ({"version": "1"}, 400, "'version' must be a version number (an integer from 1)"),
    ],
)
def test_an_alias_change_is_checked(http, ctx, user, body, status, message):
    name = fresh_name()
    create(http, user[1], name)
    add(http, user[1], name, ready_model(ctx, user[0]))
    answer = http.put(f"/resource/registry/{name}/aliases/live", headers=user[1], json=body)
    refused(answer, status, message.replace("{name!r}", repr(name)))


def test_alias_and_version_paths_have_the_services_formats(http, user):
    for path in (
        "/resource/registry/churn/aliases/1st",  # an alias starts with a letter
        "/resource/registry/churn/versions/0",
        "/resource/registry/churn/versions/01",
        "/resource/registry/ch:urn",
    ):
        assert http.get(path, headers=user[1]).status_code == 404, path


def test_description_tags_and_webhook_are_edited_with_history(http, user):
    name = fresh_name()
    create(http, user[1], name, tags={"team": "risk", "stage": "beta"})
    answer = http.patch(
        f"/resource/registry/{name}",
        headers=user[1],
        json={"description": "weekly churn", "tags": {"stage": None, "owner": "ann"}},
    )
    assert answer.status_code == 200
    record = answer.get_json()
    assert (record["description"], record["tags"]) == (
        "weekly churn",
        {"team": "risk", "owner": "ann"},
    )
    refused(
        http.patch(
            f"/resource/registry/{name}", headers=user[1], json={"webhook_secret": "s" * 16}
        ),
        422,
        "'webhook_secret' needs a 'webhook_url'",
    )
    refused(
        http.patch(f"/resource/registry/{name}", headers=user[1], json={"owner": "me"}),
        400,
        "unknown field(s) 'owner'; known: description, tags, webhook_url, webhook_secret, "
        "log_predictions",
    )
    refused(
        http.patch(f"/resource/registry/{name}", headers=user[1], json={"log_predictions": 1}),
        400,
        "'log_predictions' must be true or false",
    )
    logged = http.patch(
        f"/resource/registry/{name}", headers=user[1], json={"log_predictions": True}
    )
    assert logged.status_code == 200 and logged.get_json()["log_predictions"] is True
    again = http.patch(
        f"/resource/registry/{name}", headers=user[1], json={"log_predictions": True}
    )
    assert again.status_code == 200  # no change: no history entry
    entries = http.get(f"/resource/registry/{name}/history", headers=user[1]).get_json()["history"]
    assert [(e["event"], e["before"], e["after"]) for e in entries[1:]] == [
        ("description_changed", "", "weekly churn"),
        ("tags_changed", {"team": "risk", "stage": "beta"}, {"team": "risk", "owner": "ann"}),
        ("log_predictions_changed", False, True),
    ]


def test_the_history_is_paged_with_a_cursor(http, ctx, user):
    name = fresh_name()
    create(http, user[1], name)
    for _ in range(4):
        add(http, user[1], name, ready_model(ctx, user[0]))
    path = f"/resource/registry/{name}/history"
    first = http.get(f"{path}?limit=2", headers=user[1]).get_json()
    assert [e["event"] for e in first["history"]] == ["created", "version_added"]
    rest = http.get(f"{path}?limit=10&after={first['next']}", headers=user[1]).get_json()
    assert [e["version"] for e in rest["history"]] == [2, 3, 4] and rest["next"] is None
    refused(
        http.get(f"{path}?after=yesterday", headers=user[1]),
        400,
        "query parameter 'after' must be a history entry id (<milliseconds>-<sequence>, e.g. "
        "1795425777600-0) from an earlier answer",
    )
    refused(
        http.get(f"{path}?limit=0", headers=user[1]),
        400,
        "query parameter 'limit' must be an integer from 1 to 10000",
    )


def test_register_as_is_checked_before_anything_is_queued(http, ctx, user, other):
    name = fresh_name()
    create(http, other[1], name)
    queued = ctx.redis.llen(TRAINING_QUEUE)
    body = {"dataset_id": "0" * 32, "target": "y", "estimator": "Ridge", "register_as": "bad name"}
    refused(
        http.post("/resource/models", headers=user[1], json=body),
        400,
        "'register_as' must be a registered model's name: 1-64 letters, digits or '.', '_', "
        "'-', starting with a letter or digit",
    )
    assert ctx.redis.llen(TRAINING_QUEUE) == queued


def test_deleting_a_user_deletes_their_registered_models(http, ctx, admin):
    user = account(ctx, "rg-leaving")
    name = fresh_name()
    create(http, user[1], name)
    model_id = ready_model(ctx, user[0])
    add(http, user[1], name, model_id)
    assert (
        http.put(
            f"/resource/registry/{name}/aliases/prod", headers=user[1], json={"version": 1}
        ).status_code
        == 200
    )
    assert http.delete(f"/resource/users/{user[0]}", headers=admin).status_code == 204
    assert http.get(f"/resource/registry/{name}", headers=admin).status_code == 404
    assert http.get(f"/resource/models/{model_id}", headers=admin).status_code == 404
    keys = ctx.redis.keys(f"mlservice:registry:*:{name}*")
    assert sorted(k.decode() for k in keys) == [f"mlservice:registry:counter:{name}"]
