"""Bearer tokens: pinned algorithm, expiry, tampering."""

import base64
import json
import time
from datetime import timedelta

import jwt
import pytest

from mlservice.security import Identity, TokenError, issue_token, verify_token

SECRET = "s" * 64


def test_round_trip_carries_identity_and_claims():
    token, seconds = issue_token(Identity("ann", "user"), SECRET, timedelta(hours=1))
    assert seconds == 3600
    assert verify_token(token, SECRET) == Identity("ann", "user")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert set(claims) == {"sub", "role", "iat", "exp", "jti"}
    assert claims["exp"] - claims["iat"] == 3600


def test_sub_second_lifetime_rounds_up_to_one_second():
    _, seconds = issue_token(Identity("ann", "user"), SECRET, timedelta(milliseconds=300))
    assert seconds == 1


def test_each_token_has_its_own_jti():
    first, _ = issue_token(Identity("ann", "user"), SECRET, timedelta(hours=1))
    second, _ = issue_token(Identity("ann", "user"), SECRET, timedelta(hours=1))
    assert jwt.decode(first, SECRET, algorithms=["HS256"])["jti"] != \
        jwt.decode(second, SECRET, algorithms=["HS256"])["jti"]


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_alg_none_is_refused():
    claims = {"sub": "ann", "role": "admin", "iat": int(time.time()),
              "exp": int(time.time()) + 60, "jti": "x"}
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    with pytest.raises(TokenError, match="'none' is not accepted"):
        verify_token(token, SECRET)


def test_tampered_payload_is_refused():
    token, _ = issue_token(Identity("ann", "user"), SECRET, timedelta(hours=1))
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    with pytest.raises(TokenError, match="signature is invalid"):
        verify_token(f"{header}.{_b64(claims)}.{signature}", SECRET)


def test_foreign_secret_is_refused():
    token, _ = issue_token(Identity("ann", "user"), "o" * 64, timedelta(hours=1))
    with pytest.raises(TokenError, match="signature is invalid"):
        verify_token(token, SECRET)


def test_expired_token_is_refused():
    now = int(time.time())
    token = jwt.encode({"sub": "ann", "role": "user", "iat": now - 100, "exp": now - 10,
                        "jti": "x"}, SECRET, algorithm="HS256")
    with pytest.raises(TokenError, match="expired"):
        verify_token(token, SECRET)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "Bearer x.y"])
def test_malformed_token_is_refused(token):
    with pytest.raises(TokenError, match="malformed"):
        verify_token(token, SECRET)


def test_missing_claim_is_refused():
    token = jwt.encode({"sub": "ann", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    with pytest.raises(TokenError, match="lacks"):
        verify_token(token, SECRET)
