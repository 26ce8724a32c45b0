"""Which process of which host, running which version of the service, did a piece of work.

A leaf module (it imports nothing of the service), so that domain code such
as training runs, and the API's answers, can name their process without
importing the wiring in :mod:`mlservice.context`.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import socket


@functools.cache
def process_name() -> str:
    """``<host name>:<process id>``: who trained a model (its ``worker``).

    In Docker the host name is the container, so it names the replica.
    Computed once per process: forgotten in a forked child (Gunicorn's and
    Celery's workers), which has a process id of its own.
    """
    return f"{socket.gethostname()}:{os.getpid()}"


os.register_at_fork(after_in_child=process_name.cache_clear)


@functools.cache
def service_version() -> str:
    """The version of the service's package this process runs (pyproject's ``version``):
    what trained a model, in its lineage."""
    try:
        return importlib.metadata.version("mlservice")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree not installed
        return "unknown"
