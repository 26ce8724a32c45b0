"""The one error model: every refusal is a :class:`ServiceError` with a status and a message.

Domain code (stores, training, serving, users) raises the subclass that says
what went wrong; each subclass carries its HTTP status, so the mapping from
errors to status codes lives here and nowhere else. The API's single handler
(:mod:`mlservice.api.error_handler`) turns any of them into ``{"status": message}``;
the Celery tasks and the CLI read the same message. The tree::

    ServiceError (500: a bug; the handler logs it and answers a bare 500)
    ├── BadRequest 400          the body's shape: not JSON, a field missing or mistyped
    ├── Unauthorized 401        no credentials, or ones that do not check out
    │   └── security.TokenError
    ├── Forbidden 403           known, but not allowed to
    ├── NotFound 404            no such thing, or not one the caller may see
    ├── NotAcceptable 406       an answer format (Accept) the service does not write
    ├── Conflict 409            not in a state that allows this (taken name, not ready)
    ├── TooLarge 413            over a configured limit (the message names the setting)
    ├── UnsupportedMedia 415    a body format the service does not read
    ├── Invalid 422             well-formed, but its meaning is refused (unknown column)
    │   ├── allowed_estimators.EstimatorError
    │   └── callbacks.CallbackRefused
    ├── NotInitialised 424      the default model is not trained yet
    ├── TooManyRequests 429     too many attempts in a while (Retry-After)
    ├── Unavailable 503         Redis or the broker out of reach (Retry-After)
    ├── StillRunning 504        a synchronous wait ran out
    └── StoreFull 507           a store (the artifact store, Redis) has no room left

    JobFailed                   work done by a Celery worker ended ``failed`` (no HTTP status:
    ├── jobs.TrainingFailed     nobody waits on an answer; the record and the task say why)
    ├── scoring.ScoringFailed
    └── dataset_files.ProfilingFailed

Signals that are not refusals are plain exceptions where they are raised
(``bundles.BundleError``, ``callbacks.DeliveryFailed``, ``jobs.AlreadyRunning``,
``cache.ModelNotPublished``); the edge that knows what they mean for a client
translates them (an uploaded bundle failing its check is 400; a stored one, a bug).
"""

from __future__ import annotations

import errno
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


class StoreFull(ServiceError):
    """A store has no room left (a full disk, Redis out of memory): nothing was stored."""

    status = 507


#: Errors of a file system with no room left: no space, or the user's quota used up.
NO_ROOM = (errno.ENOSPC, errno.EDQUOT)

#: What a client reads when the artifact store's file system is full.
ARTIFACT_STORE_FULL = (
    "the artifact store is full (no space left on its disk): nothing was stored; "
    "retry once its operator has freed space, or send less"
)


def is_no_room(error: BaseException) -> bool:
    """The error is a file system with no room left (ENOSPC, EDQUOT)."""
    return isinstance(error, OSError) and error.errno in NO_ROOM


class JobFailed(Exception):
    """Work done by a Celery worker (training, scoring, profiling) ended ``failed``.

    Not a :class:`ServiceError`: nobody is waiting on an HTTP answer. The message
    is the error recorded on the model or data set, which the client reads from
    there or from the task's status.
    """


class TrainingFailed(JobFailed):
    """A model's training failed; the message is the model's ``error``.

    Declared here rather than beside the training code, so that the API, which
    never imports that code, reads it back from a task's result as a
    :class:`JobFailed` (Celery rebuilds a failure from its class's module).
    """


def client_message(error: BaseException) -> str | None:
    """``error``'s message if it was written for the client (a refusal, a job's expected
    failure); ``None`` for any other error, whose text (a class name, a file path, an
    address) belongs in the log only."""
    if isinstance(error, (ServiceError, JobFailed)):
        return str(error)
    return None
