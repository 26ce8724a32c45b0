"""Password hashes, a bounded number at a time in each process: a flood is refused, not served.

Passwords are kept as Werkzeug's salted scrypt hashes, slow on purpose: each
hash or check costs tens of milliseconds of CPU and 32 MiB. Left unbounded,
a flood of wrong passwords (even under NGINX's rate limit) kept every thread
of every API worker hashing, and predictions waited behind it for seconds.
So each process computes at most ``at_once`` hashes at a time and lets at
most ``queued`` more wait for a turn, each for at most
:data:`MAX_WAIT_SECONDS`; any other request is refused at once with 429 and
``Retry-After: 1``, before any hash is computed, so the refusal costs nothing.
A thread therefore never waits long here, and the API worker's other threads
keep serving predictions. The bounds are ``[limits] password_hashes_at_once``
and ``password_hashes_queued``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.security import check_password_hash, generate_password_hash

from .errors import TooManyRequests

#: The longest a request waits for its turn to hash before it is refused.
MAX_WAIT_SECONDS = 1.0
#: What a refused client is told to wait, in seconds.
RETRY_AFTER_SECONDS = 1


class PasswordHashingBusy(TooManyRequests):
    """Every hashing turn of this process is taken: 429, come back in a second."""

    def __init__(self) -> None:
        super().__init__(
            "too many password checks at once; retry in 1 s "
            "([limits] password_hashes_at_once, password_hashes_queued)",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


class PasswordHashing:
    """Werkzeug's password hashes and checks, at most ``at_once`` at a time (see the module)."""

    def __init__(self, at_once: int = 1, queued: int = 1) -> None:
        self._turns = threading.BoundedSemaphore(at_once)
        # Those hashing and those waiting: beyond this, a request is refused without waiting.
        self._admitted = threading.BoundedSemaphore(at_once + queued)

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold one of the hashing turns (as :meth:`hash` and :meth:`check` do);
        :class:`PasswordHashingBusy` at once when too many wait, or if none comes soon."""
        if not self._admitted.acquire(blocking=False):
            raise PasswordHashingBusy()
        try:
            if not self._turns.acquire(timeout=MAX_WAIT_SECONDS):
                raise PasswordHashingBusy()
            try:
                yield
            finally:
                self._turns.release()
        finally:
            self._admitted.release()

    def hash(self, password: str) -> str:
        """The salted hash to store for ``password``."""
        with self.turn():
            return generate_password_hash(password)

    def check(self, stored_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``stored_hash`` (in constant time)."""
        with self.turn():
            return check_password_hash(stored_hash, password)
