"""Tokens follow identity changes: a deleted, re-created, re-passworded or re-roled account's
old tokens are refused (401), on the ordinary routes and on the prediction hot path."""

import subprocess
import sys
import time

import jwt
from werkzeug.security import generate_password_hash

from mlservice import accounts, security
from mlservice.store import user_records
from tests.helpers import eventually, train, upload, wait_ready

REVOKED = (
    "the token was revoked (password, role or account changed); get a new one from /resource/auth"
)


def patch(client, path: str, token: str, body: dict):
    return client.request("PATCH", path, token, json=body)


def _refused(response) -> bool:
    assert response.status_code == 401, response.text
    assert response.json() == {"status": REVOKED}
    assert REVOKED in response.headers["WWW-Authenticate"]
    return True


def assert_revoked(client, token: str, body: dict | None = None) -> None:
    """The token is refused with the revocation message at once, on a plain route and on
    predict (whose worker remembered the user until Redis said it changed)."""
    assert _refused(client.get("/resource/datasets", token))
    for _ in range(6):  # each worker, whichever answers
        assert _refused(client.post("/resource/predict", token, json=body or {}))


def test_a_recreated_user_starts_fresh(client, admin_token, customers, settings):
    """Delete, then create again under the same name: the old token is dead and nothing of the
    old account (data sets, models, their files) is left for the new one to see."""
    name, password = f"reborn{time.time_ns()}", "first-password"
    created = {"username": name, "password": password, "role": "user"}
    assert client.post("/resource/users", admin_token, json=created).status_code == 201
    old_token = client.token(name, password)
    dataset_id = upload(client, old_token, customers)
    accepted = train(
        client,
        old_token,
        {
            "dataset_id": dataset_id,
            "target": "plan",
            "features": ["age", "city"],
            "estimator": "LogisticRegression",
        },
    )
    model_id = accepted["model_id"]
    assert wait_ready(client, old_token, model_id)["status"] == "ready"
    # The task goes on (compiling to ONNX) after the model is ready: let it end.
    eventually(
        lambda: client.get(accepted["location"], old_token).json()["done"],
        timeout=120,
        message="the training task did not end",
    )
    artifacts = settings.artifact_dir
    assert (artifacts / "datasets" / dataset_id).exists()
    assert (artifacts / "models" / model_id).exists()

    assert client.delete(f"/resource/users/{name}", admin_token).status_code == 204
    gone = client.get("/resource/datasets", old_token)
    assert gone.status_code == 401 and "no longer exists" in gone.json()["status"]
    # The data went with the account: for the admin too, records and files.
    assert client.get(f"/resource/datasets/{dataset_id}", admin_token).status_code == 404
    assert client.get(f"/resource/models/{model_id}", admin_token).status_code == 404
    assert not (artifacts / "datasets" / dataset_id).exists()
    assert not (artifacts / "models" / model_id).exists()

    again = {"username": name, "password": password, "role": "user"}  # even the same password
    assert client.post("/resource/users", admin_token, json=again).status_code == 201
    assert_revoked(client, old_token)
    new_token = client.token(name, password)
    listed = client.get("/resource/datasets", new_token).json()
    assert listed["datasets"] == [] and listed["total"] == 0
    assert client.get("/resource/models", new_token).json()["models"] == []
    assert client.get(f"/resource/datasets/{dataset_id}", new_token).status_code == 404
    predicted = client.post(f"/resource/models/{model_id}/predict", new_token, json={})
    assert predicted.status_code == 404
    # Nor the old account's task: its status (metrics, model id) is not the new one's to read.
    old_task = client.get(accepted["location"], new_token)
    assert old_task.status_code == 404
    assert old_task.json() == {"status": f"no task {accepted['task_id']!r} of yours"}


def test_a_recreated_name_reaches_nothing_a_deletion_left(client, admin_token, customers, store):
    """Everything is keyed by the account id, not the name: even data and tasks that a deletion
    missed (here the account alone is deleted, behind the API) stay out of a new account's reach.
    """
    name, password = f"leftover{time.time_ns()}", "first-password"
    created = {"username": name, "password": password}
    assert client.post("/resource/users", admin_token, json=created).status_code == 201
    old_token = client.token(name, password)
    dataset_id = upload(client, old_token, customers)
    body = {"dataset_id": dataset_id, "target": "plan", "estimator": "LogisticRegression"}
    accepted = train(client, old_token, body)
    model_id = accepted["model_id"]
    old_model = wait_ready(client, old_token, model_id)
    assert old_model["status"] == "ready" and old_model["owner"] == name
    old_id = old_model["owner_id"]

    accounts.Accounts(store).delete(name)  # the account only: its data, model and task stay
    assert client.post("/resource/users", admin_token, json=created).status_code == 201
    new_token = client.token(name, password)
    new_id = jwt.decode(new_token, options={"verify_signature": False})["aid"]
    assert new_id != old_id and len(new_id) == 32
    assert client.get(accepted["location"], new_token).status_code == 404
    assert client.get(f"/resource/models/{model_id}", new_token).status_code == 404
    assert client.get(f"/resource/datasets/{dataset_id}", new_token).status_code == 404
    predicted = client.post(f"/resource/models/{model_id}/predict", new_token, json={})
    assert predicted.status_code == 404
    assert client.get("/resource/models", new_token).json()["total"] == 0
    assert client.get("/resource/datasets", new_token).json()["total"] == 0
    # The admin sees them still, owned by the old account, and removes them.
    kept = client.get(f"/resource/models/{model_id}", admin_token).json()
    assert (kept["owner"], kept["owner_id"]) == (name, old_id)
    assert client.get(accepted["location"], admin_token).status_code == 200
    assert client.delete(f"/resource/models/{model_id}", admin_token).status_code == 204
    assert client.delete(f"/resource/datasets/{dataset_id}", admin_token).status_code == 204
    assert client.delete(f"/resource/users/{name}", admin_token).status_code == 204


def test_an_admin_password_change_revokes_the_old_tokens(client, admin_token, new_user):
    name, password, token = new_user()
    second_token = client.token(name, password)
    changed = patch(client, f"/resource/users/{name}", admin_token, {"password": "a-new-password"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["username"], changed.json()["role"]) == (name, "user")
    assert_revoked(client, token)
    assert_revoked(client, second_token)  # every token of the account, not just one
    assert client.get("/resource/auth", auth=(name, password)).status_code == 401
    fresh = client.token(name, "a-new-password")
    assert client.get("/resource/datasets", fresh).status_code == 200


def test_a_role_change_revokes_the_old_tokens(client, admin_token, new_user, initialised):
    name, password, token = new_user()
    assert client.get("/resource/users", token).status_code == 403
    changed = patch(client, f"/resource/users/{name}", admin_token, {"role": "admin"})
    assert changed.status_code == 200
    assert (changed.json()["username"], changed.json()["role"]) == (name, "admin")
    assert_revoked(client, token)
    promoted = client.token(name, password)
    assert client.get("/resource/users", promoted).status_code == 200
    # And back: the admin token is revoked at once, not left with powers it no longer has.
    demoted = patch(client, f"/resource/users/{name}", admin_token, {"role": "user"})
    assert demoted.status_code == 200
    assert_revoked(client, promoted)
    assert client.get("/resource/users", client.token(name, password)).status_code == 403


def test_the_prediction_hot_path_admits_a_current_token(
    client, admin_token, new_user, initialised, iris_record
):
    name, password, token = new_user()
    assert client.post("/resource/predict", token, json=iris_record).status_code == 200
    patch(client, f"/resource/users/{name}", admin_token, {"password": "another-password"})
    assert_revoked(client, token, iris_record)
    # The new token is admitted at once, though workers remember the old generation.
    fresh = client.token(name, "another-password")
    for _ in range(10):
        assert client.post("/resource/predict", fresh, json=iris_record).status_code == 200


def test_a_cli_password_reset_revokes(stack, client, new_user):
    name, password, token = new_user()
    reset = subprocess.run(
        [sys.executable, "-m", "mlservice", "users", "add", name, "--password", "reset-password"],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert reset.returncode == 0, reset.stderr
    assert_revoked(client, token)
    assert client.get("/resource/auth", auth=(name, password)).status_code == 401
    assert client.get("/resource/datasets", client.token(name, "reset-password")).status_code == 200


def test_a_cli_delete_takes_the_data_too(stack, client, admin_token, customers):
    name, password = f"clidel{time.time_ns()}", "cli-delete-password"
    body = {"username": name, "password": password}
    assert client.post("/resource/users", admin_token, json=body).status_code == 201
    dataset_id = upload(client, client.token(name, password), customers)
    deleted = subprocess.run(
        [sys.executable, "-m", "mlservice", "users", "delete", name],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert deleted.returncode == 0, deleted.stderr
    assert "1 data set(s) and 0 model(s)" in deleted.stdout
    assert client.get(f"/resource/datasets/{dataset_id}", admin_token).status_code == 404


def test_a_token_without_a_generation_is_refused(client, store, settings, new_user):
    """A token from before generations (no ``gen`` claim), validly signed, is revoked."""
    name, _, _ = new_user()
    secret = security.service_secret(store, settings.security.secret_key)
    now = int(time.time())
    claims = {"sub": name, "role": "user", "iat": now, "exp": now + 600, "jti": "x"}
    assert_revoked(client, jwt.encode(claims, secret, algorithm="HS256"))
    forged = jwt.encode(claims | {"gen": "0" * 16}, secret, algorithm="HS256")
    assert_revoked(client, forged)


def test_accounts_stored_before_generations_are_upgraded(client, store):
    """A user hash with a ``role`` field (the old layout) gets its ``access`` field at start."""
    name = f"legacy{time.time_ns()}"
    user_key = user_records.user_key(name)
    store.hset(
        user_key, mapping={"password_hash": generate_password_hash("legacy-pw"), "role": "admin"}
    )
    store.sadd(user_records.USERS_KEY, name)
    assert client.get("/resource/auth", auth=(name, "legacy-pw")).status_code == 401
    accounts.Accounts(store).upgrade()
    assert store.hget(user_key, "role") is None
    access = accounts.Accounts(store).current_access(name)
    assert access is not None and access.role == "admin" and len(access.generation) == 16
    assert client.get("/resource/users", client.token(name, "legacy-pw")).status_code == 200
    accounts.Accounts(store).upgrade()  # again: nothing changes
    assert accounts.Accounts(store).current_access(name) == access
    accounts.Accounts(store).delete(name)
