"""Bearer tokens: pinned algorithm, expiry, tampering."""

import base64
import json
import time
from datetime import timedelta

import jwt
import pytest

from mlservice.security import Identity, TokenError, VerifiedTokens, issue_token
from tests.reference import verify_token

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
    assert (
        jwt.decode(first, SECRET, algorithms=["HS256"])["jti"]
        != jwt.decode(second, SECRET, algorithms=["HS256"])["jti"]
    )


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_alg_none_is_refused():
    claims = {
        "sub": "ann",
        "role": "admin",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
        "jti": "x",
    }
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
    token = jwt.encode(
        {"sub": "ann", "role": "user", "iat": now - 100, "exp": now - 10, "jti": "x"},
        SECRET,
        algorithm="HS256",
    )
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


def test_verified_tokens_remember_only_valid_tokens_until_they_expire(monkeypatch):
    tokens = VerifiedTokens(SECRET, size=2)
    token, _ = issue_token(Identity("ann", "user"), SECRET, timedelta(seconds=1))
    assert tokens.verify(token) == Identity("ann", "user")
    calls = []
    real = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert tokens.verify(token) == Identity("ann", "user")
    assert calls == []  # the repeat skipped the signature check
    # A tampered or foreign token is checked (and refused) every time, never remembered.
    foreign, _ = issue_token(Identity("ann", "admin"), "o" * 64, timedelta(hours=1))
    for _ in range(2):
        with pytest.raises(TokenError, match="signature is invalid"):
            tokens.verify(foreign)
    # Past its expiry a remembered token is checked again, and refused.
    time.sleep(2.1)
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(token)


def test_verified_tokens_stay_bounded():
    tokens = VerifiedTokens(SECRET, size=3)
    for name in "abcdef":
        tokens.verify(issue_token(Identity(name, "user"), SECRET, timedelta(hours=1))[0])
    assert len(tokens._seen) == 3


def test_the_generation_travels_as_the_gen_claim():
    token, _ = issue_token(Identity("ann", "user", "0123abcd"), SECRET, timedelta(hours=1))
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["gen"] == "0123abcd"
    assert verify_token(token, SECRET) == Identity("ann", "user", "0123abcd")
    assert VerifiedTokens(SECRET).verify(token).generation == "0123abcd"


def test_a_token_without_gen_verifies_with_no_generation():
    """Such a token (issued before generations) is refused later, against the user's record."""
    token, _ = issue_token(Identity("ann", "user"), SECRET, timedelta(hours=1))
    assert "gen" not in jwt.decode(token, SECRET, algorithms=["HS256"])
    assert verify_token(token, SECRET).generation is None


def test_a_gen_claim_that_is_not_a_string_is_refused():
    now = int(time.time())
    claims = {"sub": "ann", "role": "user", "iat": now, "exp": now + 60, "jti": "x", "gen": 7}
    with pytest.raises(TokenError, match="'gen' claim is not a string"):
        verify_token(jwt.encode(claims, SECRET, algorithm="HS256"), SECRET)


def test_the_account_id_travels_in_the_aid_claim():
    identity = Identity("ann", "user", "0123abcd", "f" * 32)
    token, _ = issue_token(identity, SECRET, timedelta(hours=1))
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["aid"] == "f" * 32
    assert verify_token(token, SECRET) == identity
    now = int(time.time())
    claims = {"sub": "ann", "role": "user", "iat": now, "exp": now + 60, "jti": "x", "aid": 7}
    with pytest.raises(TokenError, match="'aid' claim is not a string"):
        verify_token(jwt.encode(claims, SECRET, algorithm="HS256"), SECRET)


def test_an_identity_without_an_account_id_may_own_nothing():
    assert Identity("ann", "user", "0123abcd", "f" * 32).require_account_id() == "f" * 32
    with pytest.raises(TokenError, match="no account id is known for 'ann'; log in again"):
        Identity("ann", "user", "0123abcd").require_account_id()


def test_accounts_read_role_generation_and_account_id_in_one_read():
    from mlservice.store import user_records

    assert user_records.parse_access([b"admin 0123abcd", b"a1"]) == user_records.Access(
        "admin", "0123abcd", "a1"
    )
    assert user_records.parse_access(["user ff", "a2"]) == user_records.Access("user", "ff", "a2")
    gone = [None, [None, None], [b"", b"a1"], [b"user", b"a1"], [b"user ", b"a1"]]
    not_upgraded = [[b"user ff", None]]  # stored before account ids: upgraded at start
    for raw in gone + not_upgraded:
        assert user_records.parse_access(raw) is None
    ids = {user_records.new_account_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    generations = {user_records.new_generation() for _ in range(1000)}
    assert len(generations) == 1000 and all(len(g) == 16 for g in generations)
