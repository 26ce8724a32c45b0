"""The one error model: every refusal is a :class:`ServiceError` with a status and a message.

Domain code (stores, training, serving, users) raises the subclass that says
what went wrong; each subclass carries its HTTP status, so the mapping from
errors to status codes lives here and nowhere else. The API's single handler
(:mod:`mlservice.api.error_handler`) turns any of them into ``{"status": message}``;
the Celery tasks and the CLI read the same message.
"""

from __future__ import annotations

from collections.abc import Mapping


class ServiceError(Exception):
    """A request that cannot be done; ``message`` says why, for the client."""

    status: int = 500

    def __init__(
        self, message: str, status: int | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        #: Extra response headers (e.g. ``WWW-Authenticate``, ``Location``).
        self.headers: dict[str, str] = dict(headers or {})


class BadRequest(ServiceError):
    """The request's shape is wrong: not JSON, a missing field, a wrong type."""

    status = 400


class Unauthorized(ServiceError):
    """No credentials, or credentials that do not check out."""

    status = 401


class Forbidden(ServiceError):
    """The caller is known but may not do this."""

    status = 403


class NotFound(ServiceError, LookupError):
    """No such thing, or not one the caller may see."""

    status = 404


class Conflict(ServiceError):
    """The thing exists but is not in a state that allows this (taken name, model not ready)."""

    status = 409


class NotAcceptable(ServiceError):
    """An answer asked for (``Accept``) in a format the service does not write."""

    status = 406


class TooLarge(ServiceError):
    """A body or a request over a configured limit."""

    status = 413


class TooManyRequests(ServiceError):
    """Too many attempts in a while (failed logins) or at once (password checks); retry later."""

    status = 429


class UnsupportedMedia(ServiceError):
    """A body in a format the service does not read."""

    status = 415


class Invalid(ServiceError, ValueError):
    """Well-formed input whose meaning is refused (unknown column, bad parameter)."""

    status = 422


class NotInitialised(ServiceError):
    """A prerequisite has not been done yet (the default model is not trained)."""

    status = 424


class Unavailable(ServiceError):
    """A dependency (Redis, a Celery worker) does not answer."""

    status = 503


class StillRunning(ServiceError):
    """A synchronous wait ran out before the work finished."""

    status = 504


class JobFailed(Exception):
    """Work done by a Celery worker (training, scoring, profiling) ended ``failed``.

    Not a :class:`ServiceError`: nobody is waiting on an HTTP answer. The message
    is the error recorded on the model or data set, which the client reads from
    there or from the task's status.
    """
