"""Accounts through the routes: failed-login counters per account and address, bounded password
hashing, and ownership keyed by account id (a re-created name, records from before ids)."""

from __future__ import annotations

import dataclasses
import io
import json
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from werkzeug.security import generate_password_hash

from mlservice import accounts, login_throttle
from mlservice.app import create_app
from mlservice.context import ServiceContext
from mlservice.password_hashing import PasswordHashing, PasswordHashingBusy
from mlservice.redis_client import key
from mlservice.store import user_records
from tests.data import make_customers
from tests.route.conftest import token_for

#: Smaller limits than the defaults, so a test reaches them with few (slow) password checks.
LIMITS = {"max_failed_logins": 3, "max_account_failed_logins": 7, "max_address_failed_logins": 5}


@pytest.fixture(scope="module")
def throttled_ctx(ctx: ServiceContext) -> ServiceContext:
    """The routes' objects with the small LIMITS (same Redis, same accounts)."""
    limits = dataclasses.replace(ctx.settings.limits, **LIMITS)
    settings = dataclasses.replace(ctx.settings, limits=limits)
    return dataclasses.replace(
        ctx, settings=settings, accounts=accounts.Accounts(ctx.redis, limits)
    )


@pytest.fixture(scope="module")
def throttled_app(throttled_ctx: ServiceContext) -> Flask:
    return create_app(ctx=throttled_ctx)


@pytest.fixture
def user(ctx: ServiceContext) -> Iterator[tuple[str, str]]:
    """A new account (name, password), deleted with its data afterwards."""
    name, password = f"rt-{uuid.uuid4().hex[:12]}", "right-password"
    ctx.accounts.create(name, password)
    yield name, password
    try:
        ctx.accounts.delete_account(ctx.datasets, ctx.models, name)
    except LookupError:
        pass


def login(app: Flask, name: str, password: str, address: str):
    """``GET /resource/auth`` as NGINX passes it on for a client at ``address``."""
    with app.test_client() as http:
        return http.get(
            "/resource/auth",
            auth=(name, password),
            headers={"X-Forwarded-For": address},
        )


def test_failed_logins_hold_back_the_guessing_address_not_the_owner(throttled_app, user):
    name, password = user
    for _ in range(LIMITS["max_failed_logins"]):
        assert login(throttled_app, name, "wrong-password", "10.0.0.1").status_code == 401
    held = login(throttled_app, name, password, "10.0.0.1")  # even the right password waits
    assert held.status_code == 429
    assert 1 <= int(held.headers["Retry-After"]) <= 60
    assert held.get_json() == {
        "status": f"too many failed logins for {name!r} from this address; retry in "
        f"{held.headers['Retry-After']} s ([limits] max_failed_logins = 3 per 60 s)"
    }
    # A client cannot pick its address: NGINX appends the one it saw, and that one counts.
    forged = login(throttled_app, name, password, "10.9.9.9, 10.0.0.1")
    assert forged.status_code == 429
    # The owner, elsewhere, signs in.
    assert login(throttled_app, name, password, "10.0.0.2").status_code == 200


def test_guessing_from_many_addresses_holds_back_every_address(throttled_app, ctx, user):
    name, password = user
    answers = [
        login(throttled_app, name, "wrong-password", f"10.1.0.{n}").status_code
        for n in range(LIMITS["max_account_failed_logins"])
    ]
    assert answers == [401] * LIMITS["max_account_failed_logins"]
    held = login(throttled_app, name, password, "10.1.1.1")
    assert held.status_code == 429
    assert held.get_json()["status"] == (
        f"too many failed logins for {name!r} from many addresses; retry in "
        f"{held.headers['Retry-After']} s ([limits] max_account_failed_logins = 7 per 300 s)"
    )
    assert 1 <= int(held.headers["Retry-After"]) <= 300
    ctx.redis.delete(login_throttle.account_key(name))  # the window ended
    assert login(throttled_app, name, password, "10.1.1.1").status_code == 200


def test_spraying_names_from_one_address_holds_that_address_back(throttled_app, user):
    """Wrong passwords for many names (unknown ones too, each a hash) from one address: after
    max_address_failed_logins it waits for every name, before any hash; others do not."""
    name, password = user
    run = uuid.uuid4().hex[:8]
    answers = [
        login(throttled_app, f"nobody-{run}-{n}", "wrong", "10.7.0.1").status_code
        for n in range(LIMITS["max_address_failed_logins"])
    ]
    assert answers == [401] * LIMITS["max_address_failed_logins"]
    held = login(throttled_app, name, password, "10.7.0.1")
    assert held.status_code == 429
    assert held.get_json()["status"] == (
        f"too many failed logins from this address; retry in {held.headers['Retry-After']} s "
        "([limits] max_address_failed_logins = 5 per 60 s)"
    )
    assert login(throttled_app, name, password, "10.7.0.2").status_code == 200


def test_a_success_clears_its_address_and_is_not_a_failure(throttled_app, ctx, user):
    name, password = user
    for _ in range(2):
        for _ in range(LIMITS["max_failed_logins"] - 1):
            assert login(throttled_app, name, "wrong-password", "10.2.0.1").status_code == 401
        assert login(throttled_app, name, password, "10.2.0.1").status_code == 200
    assert ctx.redis.get(login_throttle.address_key(name, "10.2.0.1")) is None
    account_failures = ctx.redis.get(login_throttle.account_key(name))
    assert int(account_failures) == 2 * (LIMITS["max_failed_logins"] - 1)


def test_an_unknown_name_is_throttled_like_an_account(throttled_app):
    name = f"rt-nobody-{uuid.uuid4().hex[:8]}"
    for _ in range(LIMITS["max_failed_logins"]):
        assert login(throttled_app, name, "any-password", "10.3.0.1").status_code == 401
    assert login(throttled_app, name, "any-password", "10.3.0.1").status_code == 429


def test_current_password_guesses_count_with_failed_logins(throttled_app, throttled_ctx, user):
    name, password = user
    headers = token_for(throttled_ctx, name) | {"X-Forwarded-For": "10.4.0.1"}

    def change(current: str, address: str = "10.4.0.1"):
        with throttled_app.test_client() as http:
            return http.patch(
                f"/resource/users/{name}",
                headers=headers | {"X-Forwarded-For": address},
                json={"password": "a-new-password", "current_password": current},
            )

    assert login(throttled_app, name, "wrong-password", "10.4.0.1").status_code == 401
    for _ in range(LIMITS["max_failed_logins"] - 1):
        wrong = change("wrong-password")
        assert wrong.status_code == 403
        assert wrong.get_json() == {"status": "current_password is wrong"}
    held = change(password)
    assert held.status_code == 429 and "from this address" in held.get_json()["status"]
    assert login(throttled_app, name, password, "10.4.0.1").status_code == 429  # the same counter
    changed = change(password, "10.4.0.2")
    assert changed.status_code == 200, changed.get_json()
    assert login(throttled_app, name, "a-new-password", "10.4.0.2").status_code == 200


def test_parallel_guesses_check_no_more_passwords_than_the_limit(throttled_app, user):
    """Counted before the check, atomically: 24 guesses at once, at most 3 checked."""
    name, _ = user
    statuses: list[int] = []
    start = threading.Barrier(24)

    def guess() -> None:
        start.wait()
        statuses.append(login(throttled_app, name, "wrong-password", "10.5.0.1").status_code)

    threads = [threading.Thread(target=guess) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(set(statuses)) in ([401, 429], [429])
    assert 1 <= statuses.count(401) <= LIMITS["max_failed_logins"]


def test_a_process_hashes_a_bounded_number_of_passwords_at_once():
    hashing = PasswordHashing(at_once=1, queued=1)
    stored = generate_password_hash("right-password")
    with hashing.turn():  # one hashing
        waited = threading.Thread(target=hashing.check, args=(stored, "right-password"))
        waited.start()  # one waiting for the turn
        time.sleep(0.1)
        with pytest.raises(PasswordHashingBusy) as refused:  # and no more: refused at once
            hashing.check(stored, "right-password")
    waited.join()
    assert refused.value.status == 429
    assert refused.value.headers == {"Retry-After": "1"}
    assert refused.value.message == (
        "too many password checks at once; retry in 1 s "
        "([limits] password_hashes_at_once, password_hashes_queued)"
    )
    assert hashing.check(stored, "right-password") is True  # turns given back


def test_a_login_refused_for_want_of_a_hashing_turn_counts_nowhere(throttled_ctx, user):
    name, password = user
    app = create_app(ctx=throttled_ctx)
    hashing = throttled_ctx.accounts.hashing
    with hashing.turn():  # the one turn (queued = 0): a login is refused at once
        busy = login(app, name, password, "10.6.0.1")
    assert busy.status_code == 429 and busy.headers["Retry-After"] == "1"
    assert busy.get_json()["status"].startswith("too many password checks at once")
    assert throttled_ctx.redis.get(login_throttle.address_key(name, "10.6.0.1")) is None
    assert throttled_ctx.redis.get(login_throttle.account_key(name)) is None


def upload(http, headers: dict[str, str]) -> dict:
    data = make_customers.customers().head(50).to_csv(index=False).encode()
    answer = http.post(
        "/resource/datasets",
        headers=headers,
        data={"file": (io.BytesIO(data), "customers.csv", "text/csv")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def test_a_name_created_again_is_a_new_account_and_reaches_nothing_of_the_old(
    http, ctx, admin, user
):
    """Even what a deletion left behind (here: everything) stays out of the new account's reach."""
    name, password = user
    old = token_for(ctx, name)
    old_id = ctx.accounts.current_access(name).account_id
    dataset = upload(http, old)
    assert (dataset["owner"], dataset["owner_id"]) == (name, old_id)
    trained = http.post(
        "/resource/models",
        headers=old,
        json={"dataset_id": dataset["id"], "target": "plan", "estimator": "LogisticRegression"},
    ).get_json()
    task = f"/resource/task/status/{trained['task_id']}"
    assert http.get(task, headers=old).status_code == 200

    ctx.accounts.delete(name)  # the account alone: its data and task stay
    ctx.accounts.create(name, password)
    new_id = ctx.accounts.current_access(name).account_id
    assert new_id != old_id
    new = token_for(ctx, name)
    assert http.get(f"/resource/datasets/{dataset['id']}", headers=new).status_code == 404
    assert http.get(f"/resource/models/{trained['model_id']}", headers=new).status_code == 404
    assert http.get(task, headers=new).status_code == 404
    assert http.get("/resource/datasets", headers=new).get_json()["total"] == 0
    assert http.get("/resource/models", headers=new).get_json()["total"] == 0
    assert http.get("/resource/datasets", headers=old).status_code == 401  # and old tokens
    # Admins still see it, owned by the old account.
    model = http.get(f"/resource/models/{trained['model_id']}", headers=admin).get_json()
    assert (model["owner"], model["owner_id"]) == (name, old_id)
    assert http.get(task, headers=admin).status_code == 200
    assert http.delete(f"/resource/models/{trained['model_id']}", headers=admin).status_code == 204
    assert http.delete(f"/resource/datasets/{dataset['id']}", headers=admin).status_code == 204


def test_a_token_of_an_account_since_deleted_is_refused_even_with_the_same_generation(
    http, ctx, user
):
    """The account id travels in the token (aid): another account's token never passes."""
    name, _ = user
    old = token_for(ctx, name)
    access = ctx.accounts.current_access(name)
    # As if the name were made again with the very same generation (a race of `users add`).
    ctx.redis.hset(user_records.user_key(name), "account_id", user_records.new_account_id())
    refused = http.get("/resource/datasets", headers=old)
    assert refused.status_code == 401
    assert "revoked" in refused.get_json()["status"]
    assert ctx.accounts.current_access(name).generation == access.generation


def test_records_users_and_tasks_from_before_account_ids_keep_their_owner(http, ctx, admin):
    """The upgrade at start: what a user name owned, that name's account now owns."""
    store = ctx.redis
    name, gone = f"rt-legacy-{uuid.uuid4().hex[:8]}", f"rt-gone-{uuid.uuid4().hex[:8]}"
    store.hset(
        user_records.user_key(name),
        mapping={
            "password_hash": generate_password_hash("legacy-password"),
            "access": "user 0123456789abcdef",
        },
    )
    store.sadd(user_records.USERS_KEY, name)
    created = time.time()
    records = {}
    for owner in (name, gone):
        record_id = uuid.uuid4().hex
        records[owner] = record_id
        record = {
            "id": record_id,
            "name": "old table",
            "owner": owner,
            "format": "csv",
            "size_bytes": 10,
            "status": "failed",
            "error": "gone",
            "upload_seconds": 0.1,
            "created_at": created,
        }
        store.set(key("dataset", record_id), json.dumps(record))
        store.zadd(key("datasets"), {record_id: created})
        store.zadd(key("datasets", "by", owner), {record_id: created})
    task_id = uuid.uuid4().hex
    store.set(key("task", task_id, "owner"), name, ex=3600)
    store.delete(accounts.ACCOUNT_IDS_UPGRADED_KEY)  # an old deployment has not been upgraded

    ctx.accounts.upgrade()

    access = ctx.accounts.current_access(name)
    assert access is not None and access.generation == "0123456789abcdef"  # tokens kept
    owned = ctx.datasets.catalog.get(records[name])
    assert (owned["owner"], owned["owner_id"]) == (name, access.account_id)
    assert ctx.datasets.catalog.owned_ids(access.account_id) == (records[name],)
    orphan = ctx.datasets.catalog.get(records[gone])
    assert orphan["owner"] == gone and orphan["owner_id"] != access.account_id
    assert store.exists(key("datasets", "by", name), key("datasets", "by", gone)) == 0
    assert ctx.task_owners.owner_of(task_id) == access.account_id
    assert 3500 < store.ttl(key("task", task_id, "account")) <= 3600
    assert store.exists(key("task", task_id, "owner")) == 0
    assert store.exists(accounts.ACCOUNT_IDS_UPGRADED_KEY) == 1

    token = token_for(ctx, name)
    listed = http.get("/resource/datasets", headers=token).get_json()
    assert [d["id"] for d in listed["datasets"]] == [records[name]]
    assert http.get(f"/resource/task/status/{task_id}", headers=token).status_code == 200
    # A user of the gone name, made now, gets none of that name's old data.
    ctx.accounts.create(gone, "a-new-password")
    fresh = token_for(ctx, gone)
    assert http.get(f"/resource/datasets/{records[gone]}", headers=fresh).status_code == 404
    assert http.get(f"/resource/datasets/{records[gone]}", headers=admin).status_code == 200

    store.delete(accounts.ACCOUNT_IDS_UPGRADED_KEY)
    ctx.accounts.upgrade()  # again: nothing changes
    assert ctx.datasets.catalog.get(records[name]) == owned
    assert ctx.accounts.current_access(name) == access
    for owner in (name, gone):
        ctx.datasets.catalog.delete(records[owner])
        ctx.accounts.delete(owner)
