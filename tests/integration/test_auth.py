"""/resource/auth and bearer-token checks, through NGINX."""

import base64
import json
import time

import jwt
import requests

from mlservice import security
from tests.helpers import eventually


def test_token_for_good_credentials(client, admin_credentials):
    response = client.get("/resource/auth", auth=admin_credentials)
    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == 3600  # the session's config: 1 hour
    assert body["token_type"] == "Bearer"
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["sub"] == "admin" and claims["role"] == "admin"
    assert claims["exp"] - claims["iat"] == 3600
    assert response.headers["Cache-Control"] == "no-store"


def test_wrong_password_is_401(client, admin_credentials):
    response = client.get("/resource/auth", auth=(admin_credentials[0], "not-the-password"))
    assert response.status_code == 401
    assert response.json()["status"] == "wrong user name or password"


def test_unknown_user_is_401(client):
    response = client.get("/resource/auth", auth=("nobody-here", "whatever-password"))
    assert response.status_code == 401
    assert "wrong user name or password" in response.json()["status"]


def test_no_credentials_is_401_with_basic_challenge(client):
    response = client.get("/resource/auth")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_a_pages_script_gets_no_basic_challenge(client):
    """fetch() from a page (Sec-Fetch-Mode): no challenge, so no browser password dialog."""
    for mode in ("cors", "same-origin"):
        response = client.get("/resource/auth", headers={"Sec-Fetch-Mode": mode})
        assert response.status_code == 401
        assert "WWW-Authenticate" not in response.headers
        assert response.json() == {"status": "send a user name and password with HTTP Basic"}
    navigation = client.get("/resource/auth", headers={"Sec-Fetch-Mode": "navigate"})
    assert navigation.headers["WWW-Authenticate"] == 'Basic realm="ml-service"'


def test_missing_token_is_401(client):
    response = client.post("/resource/predict", json={})
    assert response.status_code == 401
    assert "missing bearer token" in response.json()["status"]


def test_malformed_token_is_401(client):
    response = client.post("/resource/predict", "not-a-jwt", json={})
    assert response.status_code == 401
    assert "malformed" in response.json()["status"]


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_tampered_token_is_401(client, new_user):
    _, _, token = new_user()
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    forged = f"{header}.{_b64(claims)}.{signature}"
    response = client.get("/resource/users", forged)
    assert response.status_code == 401
    assert "signature is invalid" in response.json()["status"]


def test_alg_none_token_is_401(client):
    now = int(time.time())
    claims = {"sub": "admin", "role": "admin", "iat": now, "exp": now + 600, "jti": "x"}
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    response = client.get("/resource/users", token)
    assert response.status_code == 401
    assert "'none' is not accepted" in response.json()["status"]


def test_expired_token_is_401(client, store, settings):
    secret = security.service_secret(store, settings.security.secret_key)
    now = int(time.time())
    token = jwt.encode(
        {"sub": "admin", "role": "admin", "iat": now - 120, "exp": now - 60, "jti": "x"},
        secret,
        algorithm="HS256",
    )
    response = client.get("/resource/users", token)
    assert response.status_code == 401
    assert "expired" in response.json()["status"]


def test_token_of_deleted_user_is_401(client, admin_token, new_user):
    name, _, token = new_user()
    assert client.delete(f"/resource/users/{name}", admin_token).status_code == 204
    response = client.post("/resource/predict", token, json={})
    assert response.status_code == 401
    assert "no longer exists" in response.json()["status"]


def test_short_lifetime_from_config_expires(extra_api, client, admin_credentials, tmp_path):
    """A second API process configured with a 2-second lifetime issues tokens that expire."""
    url = extra_api(
        "[auth_info]\nexpiry = 2\nexpiry_time_unit = seconds\n", tmp_path / "config.properties"
    )
    response = requests.get(f"{url}/resource/auth", auth=admin_credentials, timeout=10)
    assert response.status_code == 200
    assert response.json()["expires_in"] == 2
    token = response.json()["token"]
    assert client.get("/resource/users", token).status_code == 200
    eventually(
        lambda: client.get("/resource/users", token).status_code == 401,
        timeout=10,
        message="the 2-second token still works",
    )
    expired = client.get("/resource/users", token)
    assert expired.status_code == 401
    assert "expired" in expired.json()["status"]


def test_failed_logins_hold_back_the_address_not_the_account(client, new_user, from_address):
    """After 10 wrong passwords in a minute from one address, that address waits, even with the
    right one; the owner on another machine (here 127.0.0.2, NGINX's $remote_addr) does not."""
    name, password, _ = new_user()
    guesser = from_address("127.0.0.3")
    url = f"{client.url}/resource/auth"
    for _ in range(10):
        assert guesser.get(url, auth=(name, "wrong-password"), timeout=60).status_code == 401
    locked = guesser.get(url, auth=(name, password), timeout=60)
    assert locked.status_code == 429
    wait = locked.headers["Retry-After"]
    assert 1 <= int(wait) <= 60
    assert locked.json() == {
        "status": f"too many failed logins for {name!r} from this address; retry in {wait} s "
        "([limits] max_failed_logins = 10 per 60 s)"
    }
    # The address is the one NGINX saw: a client's own X-Forwarded-For or X-Real-IP is not.
    for forged in ({"X-Forwarded-For": "127.0.0.2"}, {"X-Real-IP": "127.0.0.2"}):
        again = guesser.get(url, auth=(name, password), headers=forged, timeout=60)
        assert again.status_code == 429
    owner = from_address("127.0.0.2").get(url, auth=(name, password), timeout=60)
    assert owner.status_code == 200
    # Other accounts are not affected, from the guessing address either.
    other, other_password, _ = new_user()
    assert guesser.get(url, auth=(other, other_password), timeout=60).status_code == 200


def test_a_success_clears_the_failed_logins(client, new_user):
    name, password, _ = new_user()
    for _ in range(9):
        client.get("/resource/auth", auth=(name, "wrong-password"))
    assert client.get("/resource/auth", auth=(name, password)).status_code == 200
    for _ in range(9):
        client.get("/resource/auth", auth=(name, "wrong-password"))
    assert client.get("/resource/auth", auth=(name, password)).status_code == 200
