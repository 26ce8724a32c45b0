"""The Celery worker's entry point: ``celery -A mlservice.worker worker -Q celery,celery.training``.

Importing this module is what starts a worker's configuration: it reads the
settings into :data:`mlservice.celery_app.app` (or exits with one line naming
the bad key), and before the worker takes work it checks the default model
and both Redis logins (:mod:`mlservice.preflight`). Nothing else imports it.

``celery -A mlservice.worker beat`` uses it too: beat sends the periodic sweep
that resumes training whose worker died (see :mod:`mlservice.celery_app`).
"""

from __future__ import annotations

from celery.signals import worker_init

from . import preflight
from .celery_app import app, configure
from .config import ConfigError, get_settings

__all__ = ["app"]

try:
    configure(app, get_settings())
except ConfigError as exc:
    raise SystemExit(f"mlservice: {exc}") from None


@worker_init.connect
def _check_before_work(**_: object) -> None:
    """Refuse to start a worker with a bad default model or wrong Redis credentials.

    Celery logs and swallows exceptions from signal handlers; SystemExit gets through.
    """
    try:
        preflight.check(get_settings())
    except ConfigError as exc:
        raise SystemExit(f"mlservice: {exc}") from None
