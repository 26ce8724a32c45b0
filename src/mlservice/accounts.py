"""User accounts stored in Redis, with salted slow password hashes.

Each user is a hash ``mlservice:user:<name>`` and a member of the set
``mlservice:users``. The hash holds ``password_hash`` (Werkzeug's scrypt,
salted, never hand-made; absent for a delegated user, who has ``source =
delegated`` instead), ``access``: ``"<role> <generation>"``, and
``account_id``.

The account id is a random 128-bit id drawn once, when the account is made,
and never changed: everything the user owns (data set and model records,
task owners, and what is to come) is keyed by it, never by the name. A name
deleted and created again is a new account with a new id, so it cannot reach
anything of the old one's, even something a deletion missed. Tokens carry it
(claim ``aid``), and a request's :class:`~mlservice.security.Identity` has the
one stored here.

The generation is a random 64-bit id, drawn anew whenever the account is
created or its password or role changes. Every token carries the generation
it was issued under (claim ``gen``) and is refused once that is no longer the
user's (see :func:`mlservice.api.auth.admit`): so a change revokes every token
issued before it. Random rather than a counter: it never repeats for a name,
even after the account is deleted and created again, without a key that must
outlive the account, and two changes at once cannot draw the same one. Role
and generation share one field, read with the account id in the one Redis
round trip a request makes anyway (the prediction hot path).

Passwords are checked through a bounded number of hashing turns per process
(:mod:`mlservice.password_hashing`) and under failed-login counters per
account and client address (:mod:`mlservice.login_throttle`).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis
from werkzeug.security import generate_password_hash

from .bodies import Body
from .config import LimitsSettings
from .errors import Conflict, Forbidden, Invalid, NotFound
from .login_throttle import LoginThrottle
from .password_hashing import PasswordHashing
from .redis_client import key, text
from .security import Identity
from .store.catalog import Catalog
from .store.user_records import (
    ACCESS_FIELD,
    ACCOUNT_ID_FIELD,
    USERNAME_PATTERN,
    USERS_KEY,
    Access,
    access_value,
    new_account_id,
    new_generation,
    parse_access,
    queue_access,
    user_key,
)
from .task_status import TaskOwners

if TYPE_CHECKING:
    from .store.dataset_files import Datasets
    from .store.model_store import ModelStore

log = logging.getLogger(__name__)

ROLES = ("admin", "user")
#: The user hash's field that is "1" while an admin has disabled the account.
DISABLED_FIELD = "disabled"
USERNAME_RE = re.compile(USERNAME_PATTERN)
MIN_PASSWORD_LENGTH = 8
#: Where accounts made before generations kept the role (moved by :meth:`Accounts.upgrade`).
_LEGACY_ROLE_FIELD = "role"
#: Set once the records and task owners stored before account ids have been given theirs.
ACCOUNT_IDS_UPGRADED_KEY = key("upgraded", "account-ids")
#: Where a request's address is unknown (the shell, the CLI): a client address of its own.
LOCAL_ADDRESS = "local"
# A hash to check against when the user does not exist, so a wrong user name
# costs as much time as a wrong password.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(8))


class NewUser(Body):
    """A ``POST /resource/users`` body (the contract's ``NewUser``)."""

    username: str
    password: str
    role: str = "user"

    complaints = {
        "username": "must be a string: 1-64 letters, digits or '_', '.', '@', '-'",
        "password": f"must be a string of at least {MIN_PASSWORD_LENGTH} characters",
        "role": f"must be one of {', '.join(ROLES)}",
    }
    example = '{"username": ..., "password": ..., "role": ...}'


class UserChange(Body):
    """A ``PATCH /resource/users/<name>`` body (the contract's ``UserUpdate``)."""

    password: str | None = None
    role: str | None = None
    #: The account's password now: required when a user changes their own.
    current_password: str | None = None
    #: Admins: ``true`` disables the account (its tokens stop, it cannot log in), ``false``
    #: enables it again.
    disabled: bool | None = None

    complaints = {
        "password": f"must be a string of at least {MIN_PASSWORD_LENGTH} characters",
        "role": f"must be one of {', '.join(ROLES)}",
        "current_password": "must be a string (your password now)",
        "disabled": "must be true (disable the account) or false (enable it again)",
    }
    example = '{"password": ..., "role": ..., "current_password": ..., "disabled": ...}'


def validate(username: str, password: str, role: str) -> None:
    """Refuse a user name, password or role the service would not accept."""
    if not isinstance(username, str) or not USERNAME_RE.fullmatch(username):
        raise Invalid("username must be 1-64 letters, digits or '_', '.', '@', '-'")
    validate_password(password)
    validate_role(role)


def validate_password(password: object) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"password must be a string of at least {MIN_PASSWORD_LENGTH} characters")


def validate_role(role: object) -> None:
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")


class Accounts:
    """The user accounts in Redis (see the module's docstring)."""

    def __init__(self, redis_client: redis.Redis, limits: LimitsSettings | None = None) -> None:
        self.redis = redis_client
        limits = limits or LimitsSettings()
        self.hashing = PasswordHashing(
            limits.password_hashes_at_once, limits.password_hashes_queued
        )
        self.throttle = LoginThrottle(redis_client, limits)

    def _save(self, username: str, access: str, password_hash: str | None = None) -> str:
        """Write ``access`` (and ``password_hash``) to the user's hash, list the user, and give
        a new account its id (an existing one keeps its own), all at once; the account id."""
        hash_key = user_key(username)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(hash_key, ACCESS_FIELD, access)
        if password_hash is not None:
            pipe.hset(hash_key, "password_hash", password_hash)
        pipe.hsetnx(hash_key, ACCOUNT_ID_FIELD, new_account_id())
        pipe.hget(hash_key, ACCOUNT_ID_FIELD)
        pipe.sadd(USERS_KEY, username)
        return str(text(pipe.execute()[-2]))

    def create(self, username: str, password: str, role: str = "user") -> Identity:
        """Add a user; :class:`~mlservice.errors.Conflict` if the name is taken."""
        validate(username, password, role)
        if not self.redis.hsetnx(user_key(username), "password_hash", self.hashing.hash(password)):
            raise Conflict(f"user {username!r} already exists")
        generation = new_generation()
        account_id = self._save(username, access_value(role, generation))
        return Identity(username, role, generation, account_id)

    def set(self, username: str, password: str, role: str, revoke: bool = True) -> Identity:
        """Create or update a user (the admin bootstrap and the CLI use this).

        An existing user gets a new generation, which revokes their tokens (a
        password reset), unless ``revoke`` is false and the role stays the same.
        An existing user keeps their account id, and with it what they own.
        """
        validate(username, password, role)
        current = self.current_access(username)
        keep = not revoke and current is not None and current.role == role
        generation = current.generation if keep and current is not None else new_generation()
        password_hash = self.hashing.hash(password)
        account_id = self._save(username, access_value(role, generation), password_hash)
        return Identity(username, role, generation, account_id)

    def update(
        self,
        username: str,
        password: str | None = None,
        role: str | None = None,
        current_password: str | None = None,
        address: str = LOCAL_ADDRESS,
    ) -> Identity:
        """Change a user's password and/or role, with a new generation (their tokens stop working).

        ``current_password``, when given, must be the user's password now
        (:class:`~mlservice.errors.Forbidden` otherwise), checked under the same
        failed-login counters as a login from ``address`` (429 past them), and
        before the new password costs a hash. :class:`NotFound` if there is no
        such user; :class:`Conflict` for a password of a delegated user (the data
        server keeps it).
        """
        if password is None and role is None:
            raise Invalid("nothing to change: send a new password, a role or both")
        if password is not None:
            validate_password(password)
        if role is not None:
            validate_role(role)
        if current_password is not None and not isinstance(current_password, str):
            raise Invalid("current_password must be a string")
        checked_hash = None
        if current_password is not None:
            checked_hash = self._check_current_password(username, current_password, address)
        new_hash = self.hashing.hash(password) if password is not None else None
        hash_key = user_key(username)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(hash_key)
                    raw_hash, *raw_access = pipe.hmget(
                        hash_key, "password_hash", ACCESS_FIELD, ACCOUNT_ID_FIELD
                    )
                    access = parse_access(raw_access)
                    if access is None:
                        raise NotFound(f"user {username!r} does not exist")
                    stored_hash = text(raw_hash) or None
                    if stored_hash is None and password is not None:
                        raise _delegated(username)
                    if checked_hash is not None and stored_hash != checked_hash:
                        raise Conflict(
                            f"the password of {username!r} changed meanwhile; "
                            "send the new one as current_password"
                        )
                    new_role = role if role is not None else access.role
                    generation = new_generation()
                    pipe.multi()
                    if new_hash is not None:
                        pipe.hset(hash_key, "password_hash", new_hash)
                    pipe.hset(hash_key, ACCESS_FIELD, access_value(new_role, generation))
                    pipe.execute()
                    return Identity(username, new_role, generation, access.account_id)
                except redis.WatchError:
                    continue

    def _check_current_password(self, username: str, password: str, address: str) -> str:
        """The user's stored hash, once ``password`` matched it (403 if not, 429 past the
        failed-login counters of ``address``); :class:`NotFound`, :class:`Conflict` as
        :meth:`update` says."""
        raw_hash, *raw_access = self.redis.hmget(
            user_key(username), "password_hash", ACCESS_FIELD, ACCOUNT_ID_FIELD
        )
        if parse_access(raw_access) is None:
            raise NotFound(f"user {username!r} does not exist")
        stored_hash = text(raw_hash) or None
        if stored_hash is None:
            raise _delegated(username)
        with self.throttle.attempt(username, address) as attempt:
            attempt.succeeded = self.hashing.check(stored_hash, password)
        if not attempt.succeeded:
            raise Forbidden("current_password is wrong")
        return stored_hash

    def login(
        self, username: str, password: str, address: str, delegate_url: str | None = None
    ) -> Identity | None:
        """The user's identity if the password is right (``None`` if not), under the failed-login
        counters of ``username`` from ``address`` (429 past them, before any check).

        With ``delegate_url`` the data server there checks it
        (:meth:`authenticate_delegated`), else the local hash (:meth:`authenticate`).
        """
        with self.throttle.attempt(username, address) as attempt:
            if delegate_url:
                identity = self.authenticate_delegated(delegate_url, username, password)
            else:
                identity = self.authenticate(username, password)
            attempt.succeeded = identity is not None
        # Checked after the password, so only someone who knows it learns the account is
        # disabled. A disable after this check draws a new generation: the token this
        # login gets is then refused like every other of the account.
        if identity is not None and self.is_disabled(identity.username):
            raise Forbidden(
                f"the account {identity.username!r} is disabled; an admin can enable it again"
            )
        return identity

    def authenticate(self, username: str, password: str) -> Identity | None:
        """The user's identity (with their current generation) if the password matches.

        Not throttled by itself: requests go through :meth:`login`.
        """
        raw_hash, *raw_access = self.redis.hmget(
            user_key(username), "password_hash", ACCESS_FIELD, ACCOUNT_ID_FIELD
        )
        password_hash, access = text(raw_hash) or None, parse_access(raw_access)
        if password_hash is None or access is None:
            self.hashing.check(_DUMMY_HASH, password)
            return None
        if not self.hashing.check(password_hash, password):
            return None
        return Identity(username, access.role, access.generation, access.account_id)

    def authenticate_delegated(
        self, url: str, username: str, password: str, timeout: float = 10
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
        name = (
            answered if isinstance(answered, str) and USERNAME_RE.fullmatch(answered) else username
        )
        if not USERNAME_RE.fullmatch(name):
            return None
        hash_key = user_key(name)
        if self.redis.hexists(hash_key, "password_hash"):
            return None  # a local account: the data server cannot speak for it
        pipe = self.redis.pipeline(transaction=True)
        pipe.hsetnx(hash_key, ACCESS_FIELD, access_value("user", new_generation()))
        pipe.hset(hash_key, "source", "delegated")
        pipe.hsetnx(hash_key, ACCOUNT_ID_FIELD, new_account_id())
        pipe.sadd(USERS_KEY, name)
        pipe.execute()
        access = self.current_access(name)
        return Identity(name, access.role, access.generation, access.account_id) if access else None

    def current_access(self, username: str) -> Access | None:
        """The user's role, generation and account id now (``None`` once deleted)."""
        pipe = self.redis.pipeline(transaction=False)
        queue_access(pipe, username)
        return parse_access(pipe.execute()[0])

    def current_role(self, username: str) -> str | None:
        """The user's role now (``None`` once deleted)."""
        access = self.current_access(username)
        return access.role if access else None

    def set_disabled(self, username: str, disabled: bool) -> Identity:
        """Disable or enable an account; :class:`NotFound` if there is none.

        Disabling draws a new generation in the same transaction, so every token
        of the account stops working at once, and :meth:`login` refuses it (403)
        until an admin enables it again. What it owns is kept.
        """
        hash_key = user_key(username)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(hash_key)
                    access = parse_access(pipe.hmget(hash_key, ACCESS_FIELD, ACCOUNT_ID_FIELD))
                    if access is None:
                        raise NotFound(f"user {username!r} does not exist")
                    generation = new_generation() if disabled else access.generation
                    pipe.multi()
                    if disabled:
                        pipe.hset(hash_key, DISABLED_FIELD, "1")
                        pipe.hset(hash_key, ACCESS_FIELD, access_value(access.role, generation))
                    else:
                        pipe.hdel(hash_key, DISABLED_FIELD)
                    pipe.execute()
                    return Identity(username, access.role, generation, access.account_id)
                except redis.WatchError:
                    continue

    def is_disabled(self, username: str) -> bool:
        """Whether an admin has disabled the account."""
        return bool(self.redis.hexists(user_key(username), DISABLED_FIELD))

    def disabled_names(self, usernames: list[str]) -> frozenset[str]:
        """Those of ``usernames`` whose accounts are disabled (one round trip)."""
        pipe = self.redis.pipeline(transaction=False)
        for name in usernames:
            pipe.hexists(user_key(name), DISABLED_FIELD)
        flags = pipe.execute() if usernames else []
        return frozenset(name for name, flag in zip(usernames, flags, strict=True) if flag)

    def list(self) -> list[Identity]:
        """Every user, sorted by name."""
        names = sorted(str(text(name)) for name in self.redis.smembers(USERS_KEY))
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            queue_access(pipe, name)
        accesses = [parse_access(raw) for raw in pipe.execute()] if names else []
        return [
            Identity(name, access.role, access.generation, access.account_id)
            for name, access in zip(names, accesses, strict=True)
            if access
        ]

    def delete(self, username: str) -> None:
        """Remove a user (their generation and account id go with them); :class:`NotFound` if
        there is none.

        A user created again under the name draws a new generation and a new
        account id, so the old account's tokens stay refused and what it owned
        stays out of reach. Their data sets and models are left:
        :meth:`delete_account` removes those too.
        """
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(user_key(username))
        pipe.srem(USERS_KEY, username)
        deleted, _ = pipe.execute()
        if not deleted:
            raise NotFound(f"user {username!r} does not exist")

    def delete_account(
        self,
        datasets: Datasets,
        models: ModelStore,
        username: str,
        before_models: Callable[[str], object] | None = None,  # given the account id
    ) -> tuple[int, int]:
        """Delete a user and every data set and model they own; how many data sets and models went.

        The account goes first, so none of its tokens starts new work meanwhile;
        then ``before_models`` (the registry's entries of the account, whose versions
        pin its models), the models (their published bytes and files, a training one
        is left to find its record gone) and the data sets (files and records).
        Should anything be left, a user created again under the same name has another
        account id and never sees it.
        """
        access = self.current_access(username)
        self.delete(username)
        if access is None:  # a hash without an account id owns nothing
            return 0, 0
        if before_models is not None:
            before_models(access.account_id)
        removed_models = 0
        for model_id in models.catalog.owned_ids(access.account_id):
            try:
                models.delete(model_id)
            except NotFound:
                continue  # deleted meanwhile
            removed_models += 1
        removed_datasets = 0
        for dataset_id in datasets.catalog.owned_ids(access.account_id):
            try:
                datasets.delete(datasets.catalog.get(dataset_id))
            except NotFound:
                continue
            removed_datasets += 1
        return removed_datasets, removed_models

    def upgrade(self) -> None:
        """Bring accounts and what they own, stored by earlier versions, to this layout.

        * Accounts from before generations (a ``role`` field) get their ``access``
          field; their tokens, which carry no generation, are refused from then
          on, and their users log in again.
        * Accounts from before account ids get one (their tokens still work).
        * Once: data set and model records and task owners from before account
          ids (owned by a user *name*) are given the account id of that name's
          account now, so old data keeps its owner; those of a name with no
          account get an id no account has (only admins see them).

        Run at service start, before any request, and by the ``mlservice users``
        commands; doing it again changes nothing.
        """
        for raw_name in self.redis.smembers(USERS_KEY):
            hash_key = user_key(str(text(raw_name)))
            role = text(self.redis.hget(hash_key, _LEGACY_ROLE_FIELD))
            if role:
                self.redis.hsetnx(hash_key, ACCESS_FIELD, access_value(role, new_generation()))
                self.redis.hdel(hash_key, _LEGACY_ROLE_FIELD)
            if self.redis.hexists(hash_key, ACCESS_FIELD):
                self.redis.hsetnx(hash_key, ACCOUNT_ID_FIELD, new_account_id())
        if not self.redis.exists(ACCOUNT_IDS_UPGRADED_KEY):
            self._adopt_legacy_owners()
            self.redis.set(ACCOUNT_IDS_UPGRADED_KEY, "1")

    def _adopt_legacy_owners(self) -> None:
        """Key every record and task owner stored by user name by that name's account id."""
        account_ids: dict[str, str] = {}

        def account_of(username: str) -> str:
            if username not in account_ids:
                access = self.current_access(username)
                account_ids[username] = access.account_id if access else new_account_id()
            return account_ids[username]

        for kind in (Catalog.DATASETS, Catalog.MODELS):
            adopted = Catalog(self.redis, kind, dict).adopt_legacy_owners(account_of)
            if adopted:
                log.info("gave %d %s record(s) their owner's account id", adopted, kind)
        adopted = TaskOwners(self.redis).adopt_legacy_owners(account_of)
        if adopted:
            log.info("gave %d task(s) their owner's account id", adopted)

    def _password_matches(self, username: str, password: str) -> bool:
        stored = text(self.redis.hget(user_key(username), "password_hash"))
        return bool(stored) and self.hashing.check(str(stored), password)

    def ensure_admin(self, username: str | None, password: str | None) -> None:
        """Make sure an admin can log in, at service start.

        With ``MLSERVICE_ADMIN_PASSWORD`` the admin (``MLSERVICE_ADMIN_USERNAME``,
        by default ``admin``, as ``make run`` does) is created or updated. Without
        it and with no admin yet, one named ``admin`` is created with a random
        password, printed once (``SET NX`` guards against two starting processes
        doing it twice). Restarting with the same password keeps the admin's
        tokens; a new password (or a user who was not an admin) revokes them.
        """
        self.upgrade()
        if password:
            name = username or "admin"
            unchanged = self.current_role(name) == "admin" and self._password_matches(
                name, password
            )
            self.set(name, password, "admin", revoke=not unchanged)
            return
        if any(identity.is_admin for identity in self.list()):
            return
        if not self.redis.set(key("bootstrap-admin"), "1", nx=True):
            return
        password = secrets.token_urlsafe(18)
        self.set("admin", password, "admin")
        print(
            f"mlservice: created admin user 'admin' with password {password} "
            "(shown once; set MLSERVICE_ADMIN_PASSWORD to choose it)",
            file=sys.stderr,
            flush=True,
        )


def _delegated(username: str) -> Conflict:
    """The 409 for a password change of a user whose password the data server keeps."""
    return Conflict(
        f"user {username!r} logs in through the data server "
        "([auth_info] delegate_url), which keeps their password"
    )
