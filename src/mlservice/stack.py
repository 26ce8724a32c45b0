"""Run the whole stack natively: redis-server, a Celery worker, Gunicorn and NGINX.

``make run`` uses this in the foreground (``python -m mlservice.stack``) and
the test suite starts it once per session on free loopback ports. Every
process is started from the repository's own configuration files:
redis/redis.conf with the ACL from redis/render-acl.sh, src/gunicorn.conf.py,
and nginx/templates/ml-service.conf.template.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import ssl
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from . import nginx_conf
from .celery_app import SHORT_QUEUE, TRAINING_QUEUE
from .config import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_REDIS_CONFIG_PATH,
    REPO_DIR,
    SRC_DIR,
    AdminSettings,
    ConfigError,
    TlsSettings,
    ensure_config_file,
    load_section,
    load_settings,
    options,
)

NGINX_MAIN_CONF = """\
{user}
worker_processes 2;
pid {run}/nginx.pid;
error_log {logs}/nginx-error.log warn;
daemon off;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;  # the server's own, in JSON (the template's log_format)
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {run}/client_body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    include {run}/ml-service.conf;
}}
"""


#: How long a stopping Celery worker may take to finish its running tasks.
WORKER_GRACE_SECONDS = 60.0


class StackError(RuntimeError):
    """A process did not start; the message says which and where its log is."""


def free_port() -> int:
    """A TCP port nothing listens on right now, on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    """The four processes of the service, their ports, files and lifetimes."""

    run_dir: Path
    http_port: int = 8880
    redis_port: int = 6379
    api_port: int = 8000
    config_path: Path = DEFAULT_CONFIG_PATH
    redis_config_path: Path = DEFAULT_REDIS_CONFIG_PATH
    api_workers: int | None = None
    celery_concurrency: int = 2
    #: The Celery worker's Prometheus metrics port (0: off); None: [metrics] worker_port.
    worker_metrics_port: int | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    log_to_files: bool = True
    #: NGINX serves HTTPS with this certificate and key (PEM), plain HTTP without.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://127.0.0.1:{self.http_port}"

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    def env(self) -> dict[str, str]:
        """The environment every Python process of the stack gets."""
        env = dict(os.environ)
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "MLSERVICE_CONFIG": str(self.config_path),
                "MLSERVICE_REDIS_CONFIG": str(self.redis_config_path),
                "MLSERVICE_REDIS_HOST": "127.0.0.1",
                "MLSERVICE_REDIS_PORT": str(self.redis_port),
                "MLSERVICE_BIND": f"127.0.0.1:{self.api_port}",
            }
        )
        if self.api_workers:
            env["MLSERVICE_WORKERS"] = str(self.api_workers)
        if self.worker_metrics_port is not None:
            env["MLSERVICE_METRICS_WORKER_PORT"] = str(self.worker_metrics_port)
        env.update(self.extra_env)
        return env

    def _output(self, name: str) -> IO | None:
        if not self.log_to_files:
            return None
        return open(self.logs / f"{name}.log", "ab")

    def metrics_dir(self, name: str) -> Path:
        """Where the processes of ``name`` (api, worker) write their Prometheus values."""
        return self.run_dir / "metrics" / name

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        output = self._output(name)
        self.processes[name] = subprocess.Popen(
            argv,
            cwd=REPO_DIR,
            env=self.env() | (env or {}),
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _wait(self, name: str, ready, timeout: float) -> None:
        """Poll ``ready()`` until true; fail early if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process = self.processes.get(name)
            if process is not None and process.poll() is not None:
                raise StackError(f"{name} exited with {process.returncode}; {self._log_hint(name)}")
            if ready():
                return
            time.sleep(0.2)
        raise StackError(f"{name} not ready after {timeout:.0f}s; {self._log_hint(name)}")

    def _log_hint(self, name: str) -> str:
        if not self.log_to_files:
            return "see its output above"
        tail = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-15:]
        return f"log {self.logs / name}.log ends:\n" + "\n".join(tail)

    def start_redis(self) -> None:
        """Render the ACL file from redis/config.properties and start redis-server."""
        acl = self.run_dir / "users.acl"
        subprocess.run(
            [
                "sh",
                str(REPO_DIR / "redis" / "render-acl.sh"),
                str(self.redis_config_path),
                str(acl),
            ],
            check=True,
        )
        data = self.run_dir / "redis"
        data.mkdir(exist_ok=True)
        self._spawn(
            "redis",
            [
                "redis-server",
                str(REPO_DIR / "redis" / "redis.conf"),
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(data),
                "--aclfile",
                str(acl),
                "--logfile",
                "",
            ],
        )
        self._wait("redis", lambda: _port_open(self.redis_port), 20)

    def start_worker(self) -> None:
        """A Celery worker consuming both queues."""
        self._spawn(
            "worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "mlservice.worker",
                "worker",
                "-Q",
                f"{SHORT_QUEUE},{TRAINING_QUEUE}",
                "-c",
                str(self.celery_concurrency),
                "-n",
                f"celery-{self.http_port}@%h",
                "--loglevel",
                "INFO",
                "--without-mingle",
                # Node names start with "celery": its pidbox key must match the ACL.
                "--without-gossip",
            ],
            env={"PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir("worker"))},
        )

    def start_beat(self) -> None:
        """``celery beat``: sends the sweep that resumes training whose worker died.

        Its schedule is in memory (``beat_scheduler`` in celery_app.py): no file to keep.
        """
        self._spawn(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "mlservice.worker",
                "beat",
                "--loglevel",
                "INFO",
            ],
        )

    def stop_worker(self, grace: float = WORKER_GRACE_SECONDS) -> int | None:
        """Warm shutdown: TERM to the Celery main process alone, KILL to its group after ``grace``.

        On TERM the worker takes no new task and waits for its pool processes to
        finish theirs, which are then acknowledged. TERM to the whole group would
        kill the pool processes at once, and their tasks would run again. Returns
        the main process's exit code (``None`` if there was no worker).
        """
        process = self.processes.get("worker")
        if process is None:
            return None
        if process.poll() is None:
            try:
                process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(process, signal.SIGKILL)  # whatever lingers (pool processes)
        return process.wait()

    def start_api(self) -> None:
        """Gunicorn with src/gunicorn.conf.py."""
        self._spawn(
            "api",
            [sys.executable, "-m", "gunicorn", "-c", str(SRC_DIR / "gunicorn.conf.py")],
            env={"PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir("api"))},
        )
        self._wait("api", lambda: _http_ok(f"http://127.0.0.1:{self.api_port}/healthz"), 60)

    def write_nginx_config(self) -> Path:
        """Render NGINX's configuration into run_dir from the repo's template and the settings."""
        self.logs.mkdir(parents=True, exist_ok=True)
        settings = load_settings(self.env())
        settings.artifact_dir.mkdir(parents=True, exist_ok=True)
        nginx_settings = self.run_dir / "nginx-settings.conf"
        nginx_conf.write(settings, nginx_settings)
        template = (REPO_DIR / "nginx" / "templates" / "ml-service.conf.template").read_text()
        listen_conf = self.run_dir / "listen.conf"
        listen_env = {
            "MLSERVICE_LISTEN": f"127.0.0.1:{self.http_port}",
            "MLSERVICE_TLS_CERT": str(self.tls_cert or ""),
            "MLSERVICE_TLS_KEY": str(self.tls_key or ""),
        }
        # Plain HTTP or HTTPS; the script says which in one line on stderr.
        rendered = subprocess.run(
            ["sh", str(REPO_DIR / "nginx" / "render-listen.sh"), str(listen_conf)],
            env=os.environ | listen_env,
        )
        if rendered.returncode != 0:
            raise StackError("nginx: not started (TLS settings, see the line above)")
        # make run: the access log in the terminal, with the other processes' lines.
        access_log = f"{self.logs}/nginx-access.log" if self.log_to_files else "/dev/stdout"
        server = string.Template(template).safe_substitute(
            MLSERVICE_LISTEN_CONF=str(listen_conf),
            MLSERVICE_ACCESS_LOG=access_log,
            MLSERVICE_API_UPSTREAM=f"127.0.0.1:{self.api_port}",
            MLSERVICE_ARTIFACT_DIR=str(settings.artifact_dir),
            MLSERVICE_NGINX_SETTINGS=str(nginx_settings),
        )
        (self.run_dir / "ml-service.conf").write_text(server)
        main_conf = self.run_dir / "nginx.conf"
        # As root, NGINX workers would drop to "nobody", who cannot read the
        # artifact files this user wrote; run them as the same user.
        user = "user root;" if os.geteuid() == 0 else ""
        main_conf.write_text(NGINX_MAIN_CONF.format(user=user, run=self.run_dir, logs=self.logs))
        return main_conf

    def start_nginx(self, wait_for_api: bool = True) -> None:
        """NGINX rendered from the same server template the container uses.

        ``wait_for_api=False`` only waits for its port (a test of NGINX's own
        answers while no API listens behind it).
        """
        main_conf = self.write_nginx_config()
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self._spawn(
            "nginx",
            [
                nginx,
                "-c",
                str(main_conf),
                "-p",
                str(self.run_dir),
                "-e",
                str(self.logs / "nginx-error.log"),
            ],
        )
        if wait_for_api:
            self._wait("nginx", lambda: _http_ok(f"{self.url}/healthz"), 20)
        else:
            self._wait("nginx", lambda: _port_open(self.http_port), 20)

    def start(self, ready_timeout: float = 90) -> None:
        """Start every process in dependency order and wait until /readyz says ready."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        ensure_config_file(self.config_path)
        try:
            self.start_redis()
            self.start_worker()
            self.start_beat()
            self.start_api()
            self.start_nginx()
            self._wait("worker", lambda: _http_ok(f"{self.url}/readyz"), ready_timeout)
        except BaseException:
            self.stop()
            raise

    def api_worker_pids(self) -> list[int]:
        """The Gunicorn workers' process ids (the master's children), e.g. to watch their memory."""
        master = self.processes["api"].pid
        return [
            int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()
        ]

    def stop(self, timeout: float = 20, worker_grace: float = WORKER_GRACE_SECONDS) -> None:
        """Stop the processes in reverse order: TERM, then KILL whatever lingers.

        The Celery worker gets a warm shutdown (:meth:`stop_worker`), up to
        ``worker_grace`` seconds; Redis stops last, once the worker has
        acknowledged the tasks it finished.
        """
        others = [name for name in reversed(self.processes) if name not in ("worker", "redis")]
        for name in others:
            if self.processes[name].poll() is None:
                _signal_group(self.processes[name], signal.SIGTERM)
        self.stop_worker(worker_grace)
        self._reap(others, timeout)
        if "redis" in self.processes:
            _signal_group(self.processes["redis"], signal.SIGTERM)
            self._reap(["redis"], timeout)
        self.processes.clear()

    def _reap(self, names: list[str], timeout: float) -> None:
        """Wait for these processes to exit; KILL the groups of those still there at ``timeout``."""
        deadline = time.monotonic() + timeout
        for name in names:
            process = self.processes[name]
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


#: Readiness probes of the stack's own NGINX on loopback, over HTTPS too: they send
#: nothing secret, and a self-signed certificate must not stop them.
_PROBE_TLS = ssl.create_default_context()
_PROBE_TLS.check_hostname = False
_PROBE_TLS.verify_mode = ssl.CERT_NONE


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3, context=_PROBE_TLS) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


#: ``make run`` restarts a process that dies, after 1, 2, 4, ... seconds; a process
#: that needs more than RESTART_LIMIT restarts within RESTART_WINDOW seconds is given up.
RESTART_LIMIT = 5
RESTART_WINDOW = 300.0


@dataclass
class RestartPolicy:
    """When to restart one process that died (exponential backoff), and when to give up."""

    limit: int = RESTART_LIMIT
    window: float = RESTART_WINDOW
    restarts: list[float] = field(default_factory=list)

    def next_delay(self, now: float) -> float | None:
        """Seconds to wait before restarting now, or ``None``: it died too often, give up."""
        self.restarts = [at for at in self.restarts if now - at < self.window]
        if len(self.restarts) >= self.limit:
            return None
        delay = float(2 ** len(self.restarts))
        self.restarts.append(now)
        return delay


def supervise(stack: Stack, poll_seconds: float = 1.0) -> None:
    """Keep every process of ``stack`` running until interrupted.

    A process that exits is restarted (its leftovers killed first) after a
    growing delay; one that keeps dying raises :class:`StackError` naming it.
    Redis comes back with its data (AOF), the Celery worker re-delivers what
    was running, Gunicorn and NGINX start as before.
    """
    policies = {name: RestartPolicy() for name in stack.processes}
    while True:
        for name, process in list(stack.processes.items()):
            code = process.poll()
            if code is None:
                continue
            delay = policies[name].next_delay(time.monotonic())
            if delay is None:
                raise StackError(
                    f"{name} exited {RESTART_LIMIT} times within {RESTART_WINDOW:.0f} s "
                    f"(last exit code {code}); giving up"
                )
            print(
                f"mlservice: {name} exited with {code}; restarting it in {delay:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            time.sleep(delay)
            _signal_group(process, signal.SIGKILL)  # what is left of its group
            try:
                getattr(stack, f"start_{name}")()
                print(f"mlservice: {name} is back", file=sys.stderr, flush=True)
            except StackError as exc:
                print(f"mlservice: {exc}", file=sys.stderr, flush=True)  # retried next round
        time.sleep(poll_seconds)


def _admin_credentials(run_dir: Path) -> tuple[str, str]:
    """The admin for ``make run``: from the settings, else generated once into run_dir."""
    admin = load_section(AdminSettings)
    username = admin.username or "admin"
    if admin.password:
        return username, admin.password
    stored = run_dir / "admin-password"
    if not stored.exists():
        stored.write_text(secrets.token_urlsafe(18))
        stored.chmod(0o600)
    return username, stored.read_text().strip()


def _tls_settings(cert: Path | None, key: Path | None) -> TlsSettings:
    """``[tls]`` as the settings say, ``--tls-cert`` and ``--tls-key`` overriding them
    (checked alike: both or neither, files that can be read)."""
    declared = dict(options(TlsSettings))
    given = {declared["cert"].env: cert, declared["key"].env: key}
    environ = dict(os.environ) | {env: str(path) for env, path in given.items() if path}
    return load_section(TlsSettings, environ)


def main(argv: list[str] | None = None) -> None:
    """Run the stack in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8880, help="NGINX port (default 8880)")
    parser.add_argument("--redis-port", type=int, default=6379)
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--run-dir", type=Path, default=REPO_DIR / "var")
    parser.add_argument(
        "--tls-cert",
        type=Path,
        help="serve HTTPS with this certificate (PEM; default: [tls] cert, MLSERVICE_TLS_CERT)",
    )
    parser.add_argument(
        "--tls-key",
        type=Path,
        help="... and its private key (PEM; default: [tls] key, MLSERVICE_TLS_KEY)",
    )
    args = parser.parse_args(argv)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    ensure_config_file(Path(os.environ.get("MLSERVICE_CONFIG") or DEFAULT_CONFIG_PATH))
    try:
        username, password = _admin_credentials(args.run_dir)
        tls = _tls_settings(args.tls_cert, args.tls_key)
    except ConfigError as exc:
        sys.exit(f"mlservice: {exc}")
    stack = Stack(
        run_dir=args.run_dir.resolve(),
        http_port=args.port,
        redis_port=args.redis_port,
        api_port=args.api_port,
        # The same files the service would read (MLSERVICE_CONFIG, MLSERVICE_REDIS_CONFIG).
        config_path=Path(os.environ.get("MLSERVICE_CONFIG") or DEFAULT_CONFIG_PATH),
        redis_config_path=Path(
            os.environ.get("MLSERVICE_REDIS_CONFIG") or DEFAULT_REDIS_CONFIG_PATH
        ),
        log_to_files=False,
        extra_env={"MLSERVICE_ADMIN_USERNAME": username, "MLSERVICE_ADMIN_PASSWORD": password},
        tls_cert=tls.cert,
        tls_key=tls.key,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        stack.start()
        cli_env = "" if args.redis_port == 6379 else f"MLSERVICE_REDIS_PORT={args.redis_port} "
        print(
            f"\nML Service is ready at {stack.url}\n"
            f"  admin user: {username}\n  admin password: {password}\n"
            f"  try: curl -u {username}:<password> {stack.url}/resource/auth\n"
            f"  API docs (Swagger UI): {stack.url}/docs\n"
            f"  users from the shell: {cli_env}.venv/bin/mlservice users list\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        supervise(stack)
    except StackError as exc:
        print(f"mlservice: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        print(
            "mlservice: stopping (the Celery worker finishes its running tasks first; "
            "Ctrl-C again stops it now, and they start again at the next start)",
            file=sys.stderr,
            flush=True,
        )
        try:
            stack.stop()
        except KeyboardInterrupt:
            stack.stop(worker_grace=0)


if __name__ == "__main__":
    main()
