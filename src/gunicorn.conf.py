"""Gunicorn settings for the ML Service API (``gunicorn -c src/gunicorn.conf.py``).

Every value comes from the ``[api]`` section of the service settings
(:class:`mlservice.config.ApiSettings`; environment MLSERVICE_BIND,
MLSERVICE_WORKERS, MLSERVICE_THREADS, MLSERVICE_TIMEOUT, MLSERVICE_LOG_LEVEL).
"""

import multiprocessing

from mlservice import accounts, preflight, redis_client
from mlservice.config import ConfigError, get_settings

try:
    _settings = get_settings()
except ConfigError as exc:
    raise SystemExit(f"mlservice: {exc}") from None

wsgi_app = "mlservice.app:create_app()"
bind = _settings.api.bind
workers = _settings.api.workers or multiprocessing.cpu_count() * 2 + 1
# Threads let a worker answer predictions while another thread waits on a
# synchronous /resource/init.
worker_class = "gthread"
threads = _settings.api.threads
keepalive = 75  # longer than NGINX's upstream keepalive_timeout
accesslog = "-"
errorlog = "-"
loglevel = _settings.api.log_level
proc_name = "mlservice-api"
# A worker blocked on a synchronous init must not be killed as hung.
timeout = _settings.api.timeout or int(_settings.service.init_timeout_seconds) + 30
graceful_timeout = 30
# NGINX in front limits request lines and header lines to 8 KiB (its
# large_client_header_buffers) and answers in JSON; Gunicorn's own, lower
# limits would answer first, in HTML. 0: no limit of Gunicorn's own.
limit_request_line = 0
limit_request_field_size = 0
limit_request_fields = 32768  # the most Gunicorn allows; NGINX bounds the headers' total size


def on_starting(server):
    """Check configuration and Redis credentials, and make sure an admin exists, once."""
    try:
        preflight.check(_settings)
    except ConfigError as exc:
        raise SystemExit(f"mlservice: {exc}") from None
    store = redis_client.connect(_settings.redis)
    accounts.ensure_admin(store, _settings.admin.username, _settings.admin.password)
    store.connection_pool.disconnect()  # workers open their own after the fork
