"""The client's exceptions: one per kind of refusal, each carrying the service's own words.

The service answers every error as JSON ``{"status": "<message>"}``; these
exceptions keep that message and the HTTP status, so a caller can catch
``NotFound`` or ``Invalid`` instead of comparing numbers, and a person reads
the service's sentence, not a traceback.
"""

from __future__ import annotations

from typing import Any

import requests


class MLServiceError(Exception):
    """Base of every error the client raises; ``message`` is what to tell a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ServiceError(MLServiceError):
    """The service answered with an error status (4xx or 5xx)."""

    #: The HTTP status this class stands for (0: any not listed below).
    status_code = 0

    def __init__(
        self, message: str, status: int, response: requests.Response | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.response = response

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status})"


class BadRequest(ServiceError):
    status_code = 400


class Unauthorized(ServiceError):
    status_code = 401


class Forbidden(ServiceError):
    status_code = 403


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class TooLarge(ServiceError):
    status_code = 413


class UnsupportedMedia(ServiceError):
    status_code = 415


class Invalid(ServiceError):
    status_code = 422


class NotInitialised(ServiceError):
    status_code = 424


class TooManyRequests(ServiceError):
    status_code = 429


class InternalError(ServiceError):
    status_code = 500


class Unavailable(ServiceError):
    status_code = 503


class ConnectionFailed(MLServiceError):
    """The service could not be reached at all (refused, DNS, TLS, reset)."""


class TrainingFailed(MLServiceError):
    """A model's training (or the init task) ended ``failed``; ``error`` is the worker's reason."""

    def __init__(self, message: str, model: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.model = model


class SearchFailed(TrainingFailed):
    """A search ended ``failed`` (no trial succeeded, the refit failed) or ``cancelled``;
    ``search`` is its record, with the leaderboard of the trials that ended."""

    def __init__(self, message: str, search: dict[str, Any] | None = None) -> None:
        super().__init__(message, None)
        self.search = search


class ProfilingFailed(MLServiceError):
    """A large upload's profiling ended ``failed``: the file is not a usable table.

    ``dataset`` is the data set's record (its ``error`` says why); the service
    removed the file but keeps the record until it is deleted.
    """

    def __init__(self, message: str, dataset: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.dataset = dataset


class WaitTimeout(MLServiceError):
    """A wait for a task, model or data set ran out of time; the work itself goes on."""


class NotLoggedIn(MLServiceError):
    """No URL or token: neither given, nor in the environment, nor saved by ``mls login``."""


_BY_STATUS: dict[int, type[ServiceError]] = {
    cls.status_code: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        TooLarge,
        UnsupportedMedia,
        Invalid,
        NotInitialised,
        TooManyRequests,
        InternalError,
        Unavailable,
    )
}


def message_of(response: requests.Response) -> str:
    """The service's ``status`` message, or a short description when the body is not JSON."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("status"), str):
        return str(body["status"])
    text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
    return text or response.reason or f"HTTP {response.status_code}"


def error_for(response: requests.Response) -> ServiceError:
    """The exception for an error answer: its class by status, its message from the body."""
    status = response.status_code
    cls = _BY_STATUS.get(status, ServiceError)
    return cls(message_of(response), status, response)
