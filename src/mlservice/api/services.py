"""The service's objects as a request sees them: one place that knows where the app keeps them.

:func:`mlservice.app.create_app` installs the :class:`ServiceContext`; every
route (and the upload request class) reads it back with :func:`services`.
Both import this module, and it imports neither of them.
"""

from __future__ import annotations

from flask import Flask, current_app

from ..context import ServiceContext

EXTENSION = "mlservice"


def install(app: Flask, ctx: ServiceContext) -> None:
    """Make ``ctx`` the app's context."""
    app.extensions[EXTENSION] = ctx


def services() -> ServiceContext:
    """The current app's :class:`ServiceContext` (call inside a request)."""
    ctx: ServiceContext = current_app.extensions[EXTENSION]
    return ctx
