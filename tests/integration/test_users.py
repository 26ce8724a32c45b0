"""/resource/users: admins manage accounts; others get 403."""

from mlservice import accounts
from mlservice.store import user_records


def _names_and_roles(users: list[dict]) -> list[dict]:
    return [{"username": user["username"], "role": user["role"]} for user in users]


def test_admin_creates_lists_and_deletes_a_user(client, admin_token, store):
    created = client.post(
        "/resource/users",
        admin_token,
        json={"username": "carol", "password": "carol-password", "role": "user"},
    )
    assert created.status_code == 201
    account_id = store.hget(user_records.user_key("carol"), "account_id").decode()
    assert len(account_id) == 32
    carol = {"username": "carol", "role": "user", "account_id": account_id, "disabled": False}
    assert created.json() == carol
    listed = client.get("/resource/users", admin_token).json()["users"]
    assert carol in listed
    assert client.token("carol", "carol-password")
    assert client.delete("/resource/users/carol", admin_token).status_code == 204
    assert client.get("/resource/auth", auth=("carol", "carol-password")).status_code == 401
    names = [
        user["username"] for user in client.get("/resource/users", admin_token).json()["users"]
    ]
    assert "carol" not in names


def test_passwords_are_stored_as_salted_slow_hashes(client, admin_token, store):
    for name in ("dave", "erin"):
        client.post(
            "/resource/users",
            admin_token,
            json={"username": name, "password": "same-password", "role": "user"},
        )
    dave = store.hget("mlservice:user:dave", "password_hash").decode()
    erin = store.hget("mlservice:user:erin", "password_hash").decode()
    assert "same-password" not in dave
    assert dave.startswith(("scrypt:", "pbkdf2:")) and dave != erin


def test_duplicate_user_is_409(client, admin_token, new_user):
    name, _, _ = new_user()
    response = client.post(
        "/resource/users", admin_token, json={"username": name, "password": "another-password"}
    )
    assert response.status_code == 409
    assert name in response.json()["status"]


def test_invalid_user_fields_are_422(client, admin_token):
    for body, word in [
        ({"username": "bad name!", "password": "long-enough-pw"}, "username"),
        ({"username": "frank", "password": "short"}, "password"),
        ({"username": "frank", "password": "long-enough-pw", "role": "root"}, "role"),
    ]:
        response = client.post("/resource/users", admin_token, json=body)
        assert response.status_code == 422, body
        assert word in response.json()["status"]


def test_non_json_body_is_rejected(client, admin_token):
    response = client.post(
        "/resource/users",
        admin_token,
        data="{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["status"]


def test_non_admin_cannot_manage_users(client, new_user):
    name, _, token = new_user()
    assert client.get("/resource/users", token).status_code == 403
    response = client.post(
        "/resource/users",
        token,
        json={"username": "mallory", "password": "mallory-password", "role": "admin"},
    )
    assert response.status_code == 403
    assert "admin" in response.json()["status"]
    assert client.delete(f"/resource/users/{name}", token).status_code == 403
    assert client.get("/resource/auth", auth=("mallory", "mallory-password")).status_code == 401


def test_admin_cannot_delete_self_and_unknown_is_404(client, admin_token):
    assert client.delete("/resource/users/admin", admin_token).status_code == 409
    assert client.delete("/resource/users/no-such-user", admin_token).status_code == 404


def test_cli_manages_users_in_the_same_store(stack, client):
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "mlservice", "users", *args],
            env=stack.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    added = cli("add", "gina", "--role", "admin", "--password", "gina-password")
    assert added.returncode == 0, added.stderr
    assert client.token("gina", "gina-password")
    assert "gina\tadmin" in cli("list").stdout
    assert cli("delete", "gina").returncode == 0
    assert client.get("/resource/auth", auth=("gina", "gina-password")).status_code == 401
    missing = cli("delete", "gina")
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_admin_password_alone_sets_the_admin_named_admin(store, client, admin_credentials):
    """MLSERVICE_ADMIN_PASSWORD without a user name means the user `admin` (as make run does)."""
    username, password = admin_credentials
    assert username == "admin"
    before = store.hget(user_records.user_key("admin"), "password_hash")
    accounts.Accounts(store).ensure_admin(None, password)
    after = store.hget(user_records.user_key("admin"), "password_hash")
    assert after != before  # hashed again, with a new salt: the admin was updated
    assert client.token("admin", password)


def _patch(client, name: str, token: str, body):
    return client.request("PATCH", f"/resource/users/{name}", token, json=body)


def test_a_user_changes_their_own_password_with_the_current_one(client, new_user):
    name, password, token = new_user()
    missing = _patch(client, name, token, {"password": "my-new-password"})
    assert missing.status_code == 400
    assert "current_password" in missing.json()["status"]
    wrong = _patch(client, name, token, {"password": "my-new-password", "current_password": "no"})
    assert wrong.status_code == 403
    assert wrong.json() == {"status": "current_password is wrong"}
    assert client.get("/resource/datasets", token).status_code == 200  # refusals revoke nothing
    changed = _patch(
        client, name, token, {"password": "my-new-password", "current_password": password}
    )
    assert changed.status_code == 200
    assert _names_and_roles([changed.json()]) == [{"username": name, "role": "user"}]
    assert client.get("/resource/datasets", token).status_code == 401
    assert client.get("/resource/auth", auth=(name, password)).status_code == 401
    assert client.token(name, "my-new-password")


def test_a_user_cannot_change_their_role_or_another_account(client, new_user, admin_token):
    name, password, token = new_user()
    other, other_password, _ = new_user()
    own_role = _patch(client, name, token, {"role": "admin", "current_password": password})
    assert own_role.status_code == 403
    assert own_role.json() == {"status": "only an admin may change a role"}
    for target in (other, "admin", "no-such-user"):
        response = _patch(
            client, target, token, {"password": "hijacked-password", "current_password": password}
        )
        assert response.status_code == 403, target
        assert response.json() == {"status": "you may change only your own account"}
    assert client.token(other, other_password)
    assert client.get("/resource/datasets", token).status_code == 200
    users = client.get("/resource/users", admin_token).json()["users"]
    assert {"username": name, "role": "user"} in _names_and_roles(users)


def test_patch_refuses_bad_bodies(client, admin_token, new_user):
    name, _, _ = new_user()
    for body, status, word in [
        ({}, 422, "nothing to change"),
        ({"pasword": "typo-password"}, 400, "unknown field(s) 'pasword'"),
        ({"password": "short"}, 422, "password"),
        ({"role": "root"}, 422, "role"),
        ({"password": 12345678}, 400, "'password' must be a string"),
        (["password"], 400, "send"),
    ]:
        response = _patch(client, name, admin_token, body)
        assert response.status_code == status, (body, response.text)
        assert word in response.json()["status"], body
    assert _patch(client, "no-such-user", admin_token, {"role": "user"}).status_code == 404


def test_an_admin_cannot_change_their_own_role(client, new_user):
    name, _, token = new_user("admin")
    response = _patch(client, name, token, {"role": "user"})
    assert response.status_code == 409
    assert response.json() == {"status": "you cannot change your own role"}
    assert client.get("/resource/users", token).status_code == 200


def test_a_delegated_users_password_is_not_changed_here(client, admin_token, store):
    name = "delegated-patch"
    store.hset(
        user_records.user_key(name),
        mapping={
            user_records.ACCESS_FIELD: "user 0123456789abcdef",
            user_records.ACCOUNT_ID_FIELD: user_records.new_account_id(),
            "source": "delegated",
        },
    )
    store.sadd(user_records.USERS_KEY, name)
    response = _patch(client, name, admin_token, {"password": "a-local-password"})
    assert response.status_code == 409
    assert "data server" in response.json()["status"]
    promoted = _patch(client, name, admin_token, {"role": "admin"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    assert client.delete(f"/resource/users/{name}", admin_token).status_code == 204


def test_restarting_with_the_same_admin_password_keeps_the_admin_tokens(
    client, admin_token, store, admin_credentials
):
    username, password = admin_credentials
    accounts.Accounts(store).ensure_admin(username, password)
    assert client.get("/resource/users", admin_token).status_code == 200


def test_an_admin_disables_and_enables_an_account(client, admin_token, new_user):
    """Disabled: the account's tokens stop at once and it gets no new ones (403 once the
    password is right); enabled again, it signs in and still owns its things."""
    name, password, token = new_user()
    data = client.post(
        "/resource/datasets?name=kept.csv",
        token,
        data=b"a,b\n1,2\n3,4\n",
        headers={"Content-Type": "text/csv"},
    )
    assert data.status_code == 201, data.text
    disabled = _patch(client, name, admin_token, {"disabled": True})
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["disabled"] is True
    assert client.get("/resource/datasets", token).status_code == 401
    refused = client.get("/resource/auth", auth=(name, password))
    assert (refused.status_code, refused.json()) == (
        403,
        {"status": f"the account {name!r} is disabled; an admin can enable it again"},
    )
    wrong = client.get("/resource/auth", auth=(name, "not-the-password"))
    assert wrong.status_code == 401  # only the password's owner learns it is disabled
    listed = client.get("/resource/users", admin_token).json()["users"]
    assert [u["disabled"] for u in listed if u["username"] == name] == [True]

    enabled = _patch(client, name, admin_token, {"disabled": False})
    assert (enabled.status_code, enabled.json()["disabled"]) == (200, False)
    assert client.get("/resource/datasets", token).status_code == 401  # stays revoked
    again = client.token(name, password)
    names = [d["name"] for d in client.get("/resource/datasets", again).json()["datasets"]]
    assert names == ["kept.csv"]


def test_disabling_is_for_admins_and_not_ones_own(client, admin_token, new_user):
    name, _, token = new_user()
    own = _patch(client, name, token, {"disabled": True})
    assert (own.status_code, own.json()) == (
        403,
        {"status": "only an admin may disable or enable an account"},
    )
    admin_name, _, other_admin = new_user("admin")
    itself = _patch(client, admin_name, other_admin, {"disabled": True})
    assert (itself.status_code, itself.json()) == (
        409,
        {"status": "you cannot disable your own account"},
    )
    assert _patch(client, "no-such-user", admin_token, {"disabled": True}).status_code == 404
    typed = _patch(client, name, admin_token, {"disabled": "yes"})
    assert typed.status_code in (400, 422), typed.text
    assert "disabled" in typed.json()["status"]
