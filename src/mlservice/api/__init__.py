"""HTTP routes, one blueprint per resource. Routes stay thin: they call domain code.

Routes raise :class:`mlservice.errors.ServiceError` subclasses; the one
handler in :mod:`.error_handler` writes every error as ``{"status": message}``.
Work for a Celery worker is sent by name (``ServiceContext.enqueue``): nothing
here imports a task module, training or plotting code.
"""
