"""How a user account is kept in Redis, and read on the hot path.

Each user is a hash ``mlservice:user:<name>`` and a member of the set
``mlservice:users``. The hash holds ``password_hash`` (absent for a delegated
user, who has ``source = delegated`` instead), ``access``: ``"<role>
<generation>"``, and ``account_id``. Every authenticated request reads
``access`` and ``account_id`` together (see :mod:`mlservice.accounts` for what
the generation and the account id are). This module is the key layout and
the reading of those two fields; the logic of accounts (passwords,
delegation, throttles) is :mod:`mlservice.accounts`, above the stores.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from ..redis_client import key, text

#: The set of every user name.
USERS_KEY = key("users")
#: What a user name may be (routes and the contract use the same pattern).
USERNAME_PATTERN = "[A-Za-z0-9_.@-]{1,64}"
#: The hash field holding ``"<role> <generation>"``.
ACCESS_FIELD = "access"
#: The hash field holding the account id: written once, when the account is made.
ACCOUNT_ID_FIELD = "account_id"


@dataclass(frozen=True)
class Access:
    """A user's current role, generation and account id, as stored."""

    role: str
    generation: str
    account_id: str


def user_key(username: str) -> str:
    """The hash of one user."""
    return key("user", username)


def new_generation() -> str:
    """A fresh generation: 16 random hex digits, never the same twice in practice."""
    return secrets.token_hex(8)


def new_account_id() -> str:
    """A fresh account id: 32 random hex digits, never the same twice in practice."""
    return secrets.token_hex(16)


def access_value(role: str, generation: str) -> str:
    """The ``access`` field as stored."""
    return f"{role} {generation}"


def queue_access(pipe: redis.client.Pipeline, username: str) -> None:
    """Add the read of role, generation and account id (one ``HMGET``) to a pipeline; read its
    answer with :func:`parse_access`."""
    pipe.hmget(user_key(username), ACCESS_FIELD, ACCOUNT_ID_FIELD)


def parse_access(raw: Sequence[bytes | str | None] | None) -> Access | None:
    """The role, generation and account id from the ``HMGET`` of :func:`queue_access`;
    ``None`` if the user is gone (or was stored before account ids and not yet upgraded)."""
    raw_access, raw_account_id = raw if raw else (None, None)
    role, _, generation = (text(raw_access) or "").partition(" ")
    account_id = text(raw_account_id)
    return Access(role, generation, account_id) if role and generation and account_id else None
