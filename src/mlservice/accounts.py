"""User accounts stored in Redis, with salted slow password hashes.

Each user is a hash ``mlservice:user:<name>`` (``password_hash``, ``role``) and
a member of the set ``mlservice:users``. Hashing is Werkzeug's
(scrypt, salted), never hand-made.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import sys
import urllib.error
import urllib.request

import redis
from werkzeug.security import check_password_hash, generate_password_hash

from .errors import Conflict, Invalid, NotFound
from .redis_client import key, text
from .security import Identity

ROLES = ("admin", "user")
USERS_KEY = key("users")
USERNAME_PATTERN = "[A-Za-z0-9_.@-]{1,64}"
USERNAME_RE = re.compile(USERNAME_PATTERN)
MIN_PASSWORD_LENGTH = 8
# A hash to check against when the user does not exist, so a wrong user name
# costs as much time as a wrong password.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(8))


def _user_key(username: str) -> str:
    return key("user", username)


def validate(username: str, password: str, role: str) -> None:
    """Refuse a user name, password or role the service would not accept."""
    if not isinstance(username, str) or not USERNAME_RE.fullmatch(username):
        raise Invalid("username must be 1-64 letters, digits or '_', '.', '@', '-'")
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"password must be a string of at least {MIN_PASSWORD_LENGTH} characters")
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")


def create_user(store: redis.Redis, username: str, password: str, role: str = "user") -> Identity:
    """Add a user; :class:`~mlservice.errors.Conflict` if the name is taken."""
    validate(username, password, role)
    user_key = _user_key(username)
    if not store.hsetnx(user_key, "password_hash", generate_password_hash(password)):
        raise Conflict(f"user {username!r} already exists")
    store.hset(user_key, "role", role)
    store.sadd(USERS_KEY, username)
    return Identity(username, role)


def set_user(store: redis.Redis, username: str, password: str, role: str) -> Identity:
    """Create or update a user (the admin bootstrap and the CLI use this)."""
    validate(username, password, role)
    store.hset(
        _user_key(username),
        mapping={
            "password_hash": generate_password_hash(password),
            "role": role,
        },
    )
    store.sadd(USERS_KEY, username)
    return Identity(username, role)


def authenticate(store: redis.Redis, username: str, password: str) -> Identity | None:
    """The user's identity if the password matches, else ``None``."""
    stored = store.hmget(_user_key(username), "password_hash", "role")
    password_hash, role = (text(value) or None for value in stored)
    if password_hash is None or role is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(password_hash, password):
        return None
    return Identity(username, role)


def authenticate_delegated(
    store: redis.Redis, url: str, username: str, password: str, timeout: float = 10
) -> Identity | None:
    """Ask the data server at ``url`` to check the credentials (HTTP Basic, forwarded).

    A 2xx answer is trusted; its JSON ``username`` (if any) names the user, who
    is recorded locally with role ``user`` and no password, so tokens issued
    for them pass the usual checks. Any other answer means "no", and so does a
    name that belongs to a local (password) account such as the admin.
    """
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
    request = urllib.request.Request(
        url, headers={"Authorization": f"Basic {credentials}", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(65536)
    except (urllib.error.URLError, OSError):
        return None
    try:
        answered = json.loads(body).get("username") if body else None
    except (ValueError, AttributeError):
        answered = None
    name = answered if isinstance(answered, str) and USERNAME_RE.fullmatch(answered) else username
    if not USERNAME_RE.fullmatch(name):
        return None
    user_key = _user_key(name)
    if store.hexists(user_key, "password_hash"):
        return None  # a local account: the data server cannot speak for it
    store.hsetnx(user_key, "role", "user")
    store.hset(user_key, "source", "delegated")
    store.sadd(USERS_KEY, name)
    return Identity(name, current_role(store, name) or "user")


def current_role(store: redis.Redis, username: str) -> str | None:
    """The user's role now (``None`` once deleted), so old tokens follow changes."""
    return parse_role(store.hget(_user_key(username), "role"))


def queue_role(pipe: redis.client.Pipeline, username: str) -> None:
    """Add the role read to a pipeline; :func:`parse_role` reads its answer."""
    pipe.hget(_user_key(username), "role")


def parse_role(raw: bytes | str | None) -> str | None:
    return text(raw) or None


def list_users(store: redis.Redis) -> list[Identity]:
    """Every user, sorted by name."""
    names = sorted(str(text(name)) for name in store.smembers(USERS_KEY))
    roles = [parse_role(store.hget(_user_key(name), "role")) for name in names]
    return [Identity(name, role) for name, role in zip(names, roles, strict=True) if role]


def delete_user(store: redis.Redis, username: str) -> None:
    """Remove a user; :class:`~mlservice.errors.NotFound` if there is none."""
    if not store.delete(_user_key(username)):
        raise NotFound(f"user {username!r} does not exist")
    store.srem(USERS_KEY, username)


def ensure_admin(store: redis.Redis, username: str | None, password: str | None) -> None:
    """Make sure an admin can log in, at service start.

    With ``MLSERVICE_ADMIN_PASSWORD`` the admin (``MLSERVICE_ADMIN_USERNAME``,
    by default ``admin``, as ``make run`` does) is created or updated. Without
    it and with no admin yet, one named ``admin`` is created with a random
    password, printed once (``SET NX`` guards against two starting processes
    doing it twice).
    """
    if password:
        set_user(store, username or "admin", password, "admin")
        return
    if any(identity.is_admin for identity in list_users(store)):
        return
    if not store.set(key("bootstrap-admin"), "1", nx=True):
        return
    password = secrets.token_urlsafe(18)
    set_user(store, "admin", password, "admin")
    print(
        f"mlservice: created admin user 'admin' with password {password} "
        "(shown once; set MLSERVICE_ADMIN_PASSWORD to choose it)",
        file=sys.stderr,
        flush=True,
    )
