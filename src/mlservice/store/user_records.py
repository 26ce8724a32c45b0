"""How a user account is kept in Redis, and read on the hot path.

Each user is a hash ``mlservice:user:<name>`` and a member of the set
``mlservice:users``. The hash holds ``password_hash`` (absent for a delegated
user, who has ``source = delegated`` instead) and ``access``: ``"<role>
<generation>"``, which every authenticated request reads (see
:mod:`mlservice.accounts` for what the generation is). This module is the key
layout and the reading of ``access``; the logic of accounts (passwords,
delegation, throttles) is :mod:`mlservice.accounts`, above the stores.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import redis

from ..redis_client import key, text

#: The set of every user name.
USERS_KEY = key("users")
#: What a user name may be (routes and the contract use the same pattern).
USERNAME_PATTERN = "[A-Za-z0-9_.@-]{1,64}"
#: The hash field holding ``"<role> <generation>"``.
ACCESS_FIELD = "access"


@dataclass(frozen=True)
class Access:
    """A user's current role and generation, as stored."""

    role: str
    generation: str


def user_key(username: str) -> str:
    """The hash of one user."""
    return key("user", username)


def new_generation() -> str:
    """A fresh generation: 16 random hex digits, never the same twice in practice."""
    return secrets.token_hex(8)


def access_value(role: str, generation: str) -> str:
    """The ``access`` field as stored."""
    return f"{role} {generation}"


def queue_access(pipe: redis.client.Pipeline, username: str) -> None:
    """Add the read of role and generation (one ``HGET``) to a pipeline; :func:`parse_access`."""
    pipe.hget(user_key(username), ACCESS_FIELD)


def parse_access(raw: bytes | str | None) -> Access | None:
    """The role and generation from the ``access`` field as read; ``None`` if the user is gone."""
    role, _, generation = (text(raw) or "").partition(" ")
    return Access(role, generation) if role and generation else None
