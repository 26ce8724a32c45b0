"""Reading a token's claims and deciding when to renew it."""

import base64
import json

from mlservice_client import tokens


def make(claims: dict) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJIUzI1NiJ9.{payload}.signature"


def test_claims_of_a_jwt_and_of_garbage():
    token = make({"sub": "ann", "iat": 100, "exp": 3700})
    assert (tokens.subject_of(token), tokens.expiry_of(token), tokens.lifetime_of(token)) == (
        "ann",
        3700.0,
        3600.0,
    )
    assert tokens.claims("not-a-token") == {} and tokens.expiry_of("a.!!!.c") is None


def test_renewal_margin_is_30_s_or_a_tenth_of_the_lifetime():
    hour = make({"iat": 0, "exp": 3600})
    assert not tokens.needs_refresh(hour, 3569)
    assert tokens.needs_refresh(hour, 3571)
    short = make({"iat": 0, "exp": 2})
    assert not tokens.needs_refresh(short, 1.7)
    assert tokens.needs_refresh(short, 1.9)
    assert not tokens.needs_refresh(make({"sub": "no-exp"}), 10**10)
