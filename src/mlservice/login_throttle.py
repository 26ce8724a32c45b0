"""Failed-login counters: per account and address, per account, and per address.

Every password check against an account (``GET /resource/auth``, and
``PATCH /resource/users/<name>`` with ``current_password``) is an *attempt*
on two counters in Redis:

* ``mlservice:failed-logins:<name>:from:<address>``: wrong passwords for the
  account from one client address. After ``[limits] max_failed_logins`` within
  ``failed_login_window_seconds``, that address waits; the owner signing in
  from another address does not, so a guesser cannot lock the owner out.
* ``mlservice:failed-logins:<name>``: wrong passwords for the account from
  any address. After ``max_account_failed_logins`` within
  ``account_failed_login_window_seconds`` every address waits: guessing from
  many addresses is throttled too.
* ``mlservice:failed-logins:from:<address>``: wrong passwords from one address
  for any names. After ``max_address_failed_logins`` within
  ``failed_login_window_seconds`` that address waits for every name: spraying
  many names (existing or not, each a password hash) from one address is
  refused before it is hashed, so it cannot take the hashing turns from the
  owners signing in elsewhere.

An attempt is counted as a failure *before* the password is checked, in one
Lua script with the check of both limits, so concurrent guesses can never
check more passwords than the limits allow; a success then clears its
address's counter and takes back its count on the account's, and an attempt
that never reached the check (the hashing turns all taken) is taken back
from both. A refused attempt counts nowhere, so a flood from one address
that is being refused never adds to the account-wide count. The counters go
by user name (the account may not exist): an unknown name is throttled alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from .config import LimitsSettings
from .errors import TooManyRequests
from .redis_client import key

# KEYS: the account-and-address counter, the account's, the address's. ARGV: their limits
# and windows in that order. Answers {0, 0} (counted) or {1 (account from this address),
# 2 (account) or 3 (this address), seconds to wait}.
_ATTEMPT = """
local function wait(counter)
  local ttl = redis.call('TTL', counter)
  if ttl < 1 then return 1 end
  return ttl
end
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then
  return {1, wait(KEYS[1])}
end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[3]) then
  return {2, wait(KEYS[2])}
end
if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[5]) then
  return {3, wait(KEYS[3])}
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2], 'NX')
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[4], 'NX')
redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[6], 'NX')
return {0, 0}
"""
# Takes back one count from each counter still there; one back at zero goes.
_TAKE_BACK = """
for _, counter in ipairs(KEYS) do
  if redis.call('EXISTS', counter) == 1 and redis.call('DECR', counter) <= 0 then
    redis.call('DEL', counter)
  end
end
return 0
"""
# A right password: the account-and-address counter goes, the others take their count back.
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
for index = 2, 3 do
  if redis.call('EXISTS', KEYS[index]) == 1 and redis.call('DECR', KEYS[index]) <= 0 then
    redis.call('DEL', KEYS[index])
  end
end
return 0
"""


def address_key(username: str, address: str) -> str:
    """The counter of wrong passwords for ``username`` from ``address``."""
    return key("failed-logins", username, "from", address)


def spray_key(address: str) -> str:
    """The counter of wrong passwords from ``address``, for any names."""
    return key("failed-logins", "from", address)


def account_key(username: str) -> str:
    """The counter of wrong passwords for ``username`` from any address."""
    return key("failed-logins", username)


@dataclass
class Attempt:
    """One password check being made; say how it went with :attr:`succeeded`."""

    succeeded: bool = False


class LoginThrottle:
    """The failed-login counters in Redis (see the module)."""

    def __init__(self, redis_client: redis.Redis, limits: LimitsSettings) -> None:
        self.limits = limits
        self._attempt = redis_client.register_script(_ATTEMPT)
        self._take_back = redis_client.register_script(_TAKE_BACK)
        self._succeeded = redis_client.register_script(_SUCCEEDED)

    @contextmanager
    def attempt(self, username: str, address: str) -> Iterator[Attempt]:
        """Count a password check for ``username`` from ``address`` as failed, or refuse it
        (:class:`~mlservice.errors.TooManyRequests` with ``Retry-After``) when a limit is
        reached; the caller sets ``succeeded`` once the password matched.

        An exception inside (the check never made) takes the count back.
        """
        limits = self.limits
        keys = [address_key(username, address), account_key(username), spray_key(address)]
        args = [
            limits.max_failed_logins,
            limits.failed_login_window_seconds,
            limits.max_account_failed_logins,
            limits.account_failed_login_window_seconds,
            limits.max_address_failed_logins,
            limits.failed_login_window_seconds,
        ]
        refused, wait = (int(part) for part in self._attempt(keys=keys, args=args))
        if refused:
            raise self._refusal(username, refused, wait)
        attempt = Attempt()
        try:
            yield attempt
        except BaseException:
            self._take_back(keys=keys)
            raise
        if attempt.succeeded:
            self._succeeded(keys=keys)

    def _refusal(self, username: str, which: int, wait: int) -> TooManyRequests:
        """The 429 naming the limit reached (1, 2, 3: see ``_ATTEMPT``) and when to come back."""
        limits = self.limits
        if which == 3:
            return TooManyRequests(
                f"too many failed logins from this address; retry in {wait} s ([limits] "
                f"max_address_failed_logins = {limits.max_address_failed_logins} per "
                f"{limits.failed_login_window_seconds} s)",
                headers={"Retry-After": str(wait)},
            )
        if which == 1:
            where = "from this address"
            limit = (
                f"[limits] max_failed_logins = {limits.max_failed_logins} per "
                f"{limits.failed_login_window_seconds} s"
            )
        else:
            where = "from many addresses"
            limit = (
                f"[limits] max_account_failed_logins = {limits.max_account_failed_logins} per "
                f"{limits.account_failed_login_window_seconds} s"
            )
        return TooManyRequests(
            f"too many failed logins for {username!r} {where}; retry in {wait} s ({limit})",
            headers={"Retry-After": str(wait)},
        )
