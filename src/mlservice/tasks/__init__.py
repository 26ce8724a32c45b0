"""The Celery tasks: thin shells around domain code that knows nothing of Celery.

Only Celery workers import this package (``include`` in
:mod:`mlservice.celery_app`); the API sends tasks by name. Every task derives
from :class:`~.base.ServiceTask`, which reports progress, settles the work a
hard time limit killed, and treats :class:`~mlservice.errors.JobFailed` as an
expected outcome rather than a crash.
"""
