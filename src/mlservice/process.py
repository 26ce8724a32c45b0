"""Which process of which host, running which version of the service, did a piece of work.

A leaf module (it imports nothing of the service), so that domain code such
as training runs, and the API's answers, can name their process without
importing the wiring in :mod:`mlservice.context`. Answers carry an opaque id
(:func:`served_by`), never a host name or process id: those are internal.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
import secrets
import socket
import threading


@functools.cache
def process_name() -> str:
    """``<host name>:<process id>``: who trained a model (its ``worker``).

    In Docker the host name is the container, so it names the replica.
    Computed once per process: forgotten in a forked child (Gunicorn's and
    Celery's workers), which has a process id of its own.
    """
    return f"{socket.gethostname()}:{os.getpid()}"


_served_by: str | None = None
_served_by_lock = threading.Lock()


def served_by() -> str:
    """An opaque id of this process, the same for its whole life: what answers name
    (``X-Served-By``) instead of its host name and process id.

    Random, made at first use; the log line written then pairs it with
    :func:`process_name`, so an operator can tell which process answered.
    """
    global _served_by
    if _served_by is not None:
        return _served_by
    with _served_by_lock:
        if _served_by is None:
            _served_by = secrets.token_hex(8)
            logging.getLogger(__name__).info(
                "this process answers as %s in X-Served-By (it is %s)", _served_by, process_name()
            )
        return _served_by


def _forget_in_child() -> None:
    """A forked child is another process: another name, another id."""
    global _served_by, _served_by_lock
    process_name.cache_clear()
    _served_by, _served_by_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)


@functools.cache
def service_version() -> str:
    """The version of the service's package this process runs (pyproject's ``version``):
    what trained a model, in its lineage."""
    try:
        return importlib.metadata.version("mlservice")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree not installed
        return "unknown"
