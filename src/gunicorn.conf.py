"""Gunicorn settings for the ML Service API (``gunicorn -c src/gunicorn.conf.py``).

Environment: MLSERVICE_BIND (default 127.0.0.1:8000), MLSERVICE_WORKERS
(default 2 x CPUs + 1), MLSERVICE_THREADS (default 4), MLSERVICE_TIMEOUT.
"""

import multiprocessing
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mlservice.config import ConfigError, get_settings  # noqa: E402

wsgi_app = "mlservice.app:create_app()"
bind = os.environ.get("MLSERVICE_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("MLSERVICE_WORKERS") or multiprocessing.cpu_count() * 2 + 1)
# Threads let a worker answer predictions while another thread waits on a
# synchronous /resource/init.
worker_class = "gthread"
threads = int(os.environ.get("MLSERVICE_THREADS") or 4)
keepalive = 75  # longer than NGINX's upstream keepalive_timeout
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("MLSERVICE_LOG_LEVEL", "info")
proc_name = "mlservice-api"

try:
    _settings = get_settings()
except ConfigError as exc:
    raise SystemExit(f"mlservice: {exc}") from None

# A worker blocked on a synchronous init must not be killed as hung.
timeout = int(os.environ.get("MLSERVICE_TIMEOUT") or _settings.init_timeout + 30)
graceful_timeout = 30


def on_starting(server):
    """Check configuration and Redis credentials, and make sure an admin exists, once."""
    from mlservice import redis_client, users
    from mlservice import preflight

    try:
        preflight.check(_settings)
    except ConfigError as exc:
        raise SystemExit(f"mlservice: {exc}") from None
    store = redis_client.connect(_settings.redis)
    users.ensure_admin(store, _settings.admin_username, _settings.admin_password)
    store.connection_pool.disconnect()  # workers open their own after the fork
