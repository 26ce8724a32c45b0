"""Gunicorn settings for the ML Service API (``gunicorn -c src/gunicorn.conf.py``).

Every value comes from the ``[api]`` section of the service settings
(:class:`mlservice.config.ApiSettings`; environment MLSERVICE_BIND,
MLSERVICE_WORKERS, MLSERVICE_THREADS, MLSERVICE_TIMEOUT, MLSERVICE_LOG_LEVEL).
"""

import os
import shutil
import tempfile

from mlservice import accounts, logs, preflight, redis_client
from mlservice.config import ConfigError, get_settings

# Prometheus metrics: every worker writes to one directory, which GET /metrics
# adds up (mlservice.telemetry). make run, the tests and Compose set it; a bare
# start gets a fresh one of its own, removed at exit. Set here, in the master,
# before any worker imports prometheus_client.
_own_metrics_dir = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _own_metrics_dir = tempfile.mkdtemp(prefix="mlservice-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _own_metrics_dir

try:
    _settings = get_settings()
except ConfigError as exc:
    raise SystemExit(f"mlservice: {exc}") from None

wsgi_app = "mlservice.app:create_app()"
bind = _settings.api.bind
# CPUs + 1 workers of 2 threads: measured fastest of the safe settings on 2 cores
# (make bench-gunicorn). Threads let a worker answer predictions while another
# thread waits on an upload or a synchronous /resource/init, and its main
# thread keeps the heartbeat going through them (a sync worker is killed).
workers = _settings.api.workers or len(os.sched_getaffinity(0)) + 1  # the usable CPUs (cpuset)
worker_class = _settings.api.worker_class
threads = _settings.api.threads
keepalive = 75  # longer than NGINX's upstream keepalive_timeout
# No access log of Gunicorn's: the app writes one line per request, with its
# route, user and request id (mlservice.api.request_log).
accesslog = None
errorlog = "-"
loglevel = _settings.api.log_level
# Gunicorn's lines and the app's, in [logging] format (JSON by default), to stdout.
logconfig_dict = logs.dict_config(_settings.logging.format, _settings.api.log_level)
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
    connection = redis_client.connect(_settings.redis)
    accounts.Accounts(connection).ensure_admin(_settings.admin.username, _settings.admin.password)
    connection.connection_pool.disconnect()  # workers open their own after the fork
    from mlservice import telemetry  # after PROMETHEUS_MULTIPROC_DIR is set

    telemetry.clear_directory(telemetry.multiprocess_directory())  # no counts of an earlier run


def child_exit(server, worker):
    """A worker exited: its values leave the live gauges of /metrics."""
    from mlservice import telemetry

    telemetry.process_exited(worker.pid)


def on_exit(server):
    """Remove the metrics directory this master made for itself (none given)."""
    if _own_metrics_dir:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)
