"""One HTTP exchange with the service: the token, safe retries, and errors as exceptions.

:class:`Transport` is what every :class:`~mlservice_client.client.Client`
method goes through. It puts a current bearer token on the request (getting
a new one from ``GET /resource/auth`` when the old one is about to expire or
came back expired, if it knows the credentials), repeats only what is safe to
repeat (see :mod:`.backoff`), and turns every error answer into the
exception of its status with the service's message.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from . import __version__, backoff, tokens
from .errors import ConnectionFailed, Unauthorized, error_for

#: Seconds to wait for a connection; the read timeout is the caller's.
CONNECT_TIMEOUT = 10.0

#: NGINX waits up to 300 s for the API; a client waiting less would give up first.
READ_TIMEOUT = 310.0


def _replayable(body: Any) -> bool:
    """Whether a request body can be sent a second time."""
    return body is None or isinstance(body, (bytes, str, dict, list)) or hasattr(body, "rewind")


def _rewind(body: Any) -> None:
    if hasattr(body, "rewind"):
        body.rewind()


class Transport:
    """HTTP to one service: base URL, bearer token (and how to renew it), retries."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        retries: int = 3,
        read_timeout: float = READ_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.username = username
        self._password = password
        self.retries = retries
        self.read_timeout = read_timeout
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = f"mlservice-client/{__version__}"

    @property
    def can_log_in(self) -> bool:
        """Whether this transport knows credentials, and so can renew its token."""
        return self.username is not None and self._password is not None

    def log_in(self) -> dict[str, Any]:
        """Exchange the credentials for a token (``GET /resource/auth``) and keep it."""
        if not self.can_log_in:
            raise Unauthorized(
                "no user name and password to get a token with; give username= and password=",
                401,
            )
        assert self.username is not None and self._password is not None
        response = self.send(
            "GET", "/resource/auth", auth=(self.username, self._password), bearer=False
        )
        answer: dict[str, Any] = response.json()
        self.token = answer["token"]
        return answer

    def _bearer(self) -> dict[str, str]:
        """The Authorization header, renewing the token first when it is about to expire."""
        if self.can_log_in and (
            self.token is None or tokens.needs_refresh(self.token, time.time())
        ):
            self.log_in()
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def send(
        self,
        method: str,
        path: str,
        *,
        bearer: bool = True,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send the request; the answer if it is a success, else raise its exception.

        ``kwargs`` go to :meth:`requests.Session.request` (``params``, ``json``,
        ``data``, ``stream``, ``auth``). A ``data`` body that cannot be sent
        twice (a plain generator) is never repeated.
        """
        body = kwargs.get("data")
        replayable = _replayable(body)
        renewed = False
        for attempt in range(self.retries + 1):
            sent_headers = dict(headers or {})
            if bearer:
                sent_headers.update(self._bearer())
            try:
                response = self.session.request(
                    method,
                    self.url + path,
                    headers=sent_headers,
                    timeout=(CONNECT_TIMEOUT, timeout or self.read_timeout),
                    **kwargs,
                )
            except requests.RequestException as exc:
                if attempt < self.retries and replayable and backoff.retryable_error(method, exc):
                    time.sleep(min(8.0, 0.5 * 2**attempt))
                    _rewind(body)
                    continue
                raise ConnectionFailed(self._unreachable(exc)) from None
            if response.status_code < 400:
                return response
            retry_after = response.headers.get("Retry-After")
            wait = backoff.retryable_status(response.status_code, retry_after)
            if wait is not None and attempt < self.retries and replayable:
                response.close()
                time.sleep(wait)
                _rewind(body)
                continue
            if (
                response.status_code == 401
                and bearer
                and self.can_log_in
                and not renewed
                and replayable
            ):
                # The token expired or was revoked (password or role changed) meanwhile.
                response.close()
                renewed = True
                self.log_in()
                _rewind(body)
                continue
            error = error_for(response)
            response.close()
            raise error
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def _unreachable(self, exc: requests.RequestException) -> str:
        """One line saying why the service could not be reached."""
        if isinstance(exc, requests.ConnectTimeout):
            why = f"no connection within {CONNECT_TIMEOUT:.0f} s"
        elif isinstance(exc, requests.ReadTimeout):
            why = "no answer in time"
        elif isinstance(exc, requests.exceptions.SSLError):
            why = "TLS failed"
        elif isinstance(exc, requests.ConnectionError):
            why = "connection refused or lost"
        else:
            why = type(exc).__name__
        return f"cannot reach the service at {self.url}: {why}"
