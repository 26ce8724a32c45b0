"""Which version a request by alias goes to: one version, or a split drawn by weight."""

from __future__ import annotations

import pytest

from mlservice.errors import NotFound
from mlservice.registry import routing
from mlservice.registry.registry_records import encode
from mlservice.security import Identity

ANN = Identity("ann", "user", account_id="id-of-ann")


def alias(**fields) -> dict:
    return {
        "alias": "production",
        "version": None,
        "versions": None,
        "shadow": None,
        "models": {"1": "a" * 32, "2": "b" * 32, "3": "c" * 32},
        "set_by": "ann",
        "set_at": 1.0,
    } | fields


def record(owner: str = "ann") -> bytes:
    return encode(
        {
            "name": "churn",
            "owner": owner,
            "owner_id": f"id-of-{owner}",
            "description": "",
            "tags": {},
            "webhook_url": None,
            "latest_version": 3,
            "created_at": 1.0,
            "updated_at": 1.0,
        }
    )


def test_a_split_is_drawn_by_weight():
    split = alias(versions={"1": 90, "2": 10})
    # 100 evenly spaced draws: exactly the weights.
    drawn = [routing.choose(split, lambda i=i: i / 100) for i in range(100)]
    assert (drawn.count(1), drawn.count(2)) == (90, 10)
    assert routing.choose(split, lambda: 0.8999) == 1
    assert routing.choose(split, lambda: 0.9) == 2
    assert routing.choose(alias(version=3), lambda: 0.99) == 3


def test_a_route_names_the_model_and_the_shadow():
    raw = encode(alias(versions={"1": 1, "2": 1}, shadow=3))
    route = routing.by_alias(ANN, "churn", "production", record(), raw, draw=lambda: 0.75)
    assert route == routing.Route("churn", 2, "b" * 32, (3, "c" * 32))


def test_another_users_name_and_a_missing_alias_are_not_found():
    raw = encode(alias(version=1))
    with pytest.raises(NotFound, match="no registered model 'churn'"):
        routing.by_alias(ANN, "churn", "production", record("bob"), raw)
    with pytest.raises(NotFound, match="no registered model 'churn'"):
        routing.by_alias(ANN, "churn", "production", None, raw)
    with pytest.raises(NotFound, match="registered model 'churn' has no alias 'production'"):
        routing.by_alias(ANN, "churn", "production", record(), None)
    admin = Identity("root", "admin")
    assert routing.by_alias(admin, "churn", "production", record("bob"), raw).version == 1
