"""Run the whole stack natively: redis-server, a Celery worker, Gunicorn and NGINX.

``make run`` uses this in the foreground (``python -m mlservice.stack``) and
the test suite starts it once per session on free loopback ports. Every
process is started from the repository's own configuration files:
redis/redis.conf with the ACL from redis/render-acl.sh, src/gunicorn.conf.py,
and nginx/templates/ml-service.conf.template.

The supervisor owns what it starts:

* Nothing starts before the whole configuration has been read and checked,
  what an earlier, killed supervisor of the same run directory left running
  has been stopped (:mod:`mlservice.runstate`), and every port is free; a
  busy port names its process (:mod:`mlservice.ports`).
* Its children die with it, however it dies (SIGKILL included): each asks
  the kernel for a signal when its parent goes (``PR_SET_PDEATHSIG``), one
  that makes it stop its own workers as it exits.
* A process counts as started only when its port is its own and it answers;
  "ready" means Redis answers the app user, Gunicorn /healthz, and NGINX
  /readyz with a Celery worker answering.
* What it writes (var/, Redis's data, logs) is the user's alone: children
  run with umask 077.
"""

from __future__ import annotations

import argparse
import ctypes
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

import redis

from . import nginx_conf, ports, preflight, runstate
from .celery_app import SHORT_QUEUE, TRAINING_QUEUE
from .config import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_REDIS_CONFIG_PATH,
    DEFAULT_RUN_DIR,
    REPO_DIR,
    SRC_DIR,
    AdminSettings,
    ConfigError,
    Settings,
    TlsSettings,
    ensure_config_file,
    load_section,
    load_settings,
    options,
    readable_file,
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

#: What every process of the stack writes is its user's alone: Redis's AOF holds
#: the token-signing secret, the logs hold request details.
CHILD_UMASK = 0o077

#: The signal each process gets when the supervisor dies: one after which it stops
#: its own workers and exits at once. NGINX and redis-server: TERM (a fast shutdown;
#: Redis flushes its AOF). Gunicorn: INT (a quick shutdown; its workers also leave
#: when their parent changes). Celery beat: TERM. The Celery worker: KILL, as
#: nobody is left to wait for a warm shutdown; its pool processes die with it (Celery
#: sets their own parent-death signal) and their tasks are delivered again from their
#: leases, as after any crash.
DEATH_SIGNALS = {
    "redis": signal.SIGTERM,
    "nginx": signal.SIGTERM,
    "api": signal.SIGINT,
    "beat": signal.SIGTERM,
    "worker": signal.SIGKILL,
}

#: What the ports are called on make run's command line, for error messages.
PORT_FLAGS = {
    "http_port": ("NGINX", "PORT", "--port"),
    "redis_port": ("redis-server", "REDIS_PORT", "--redis-port"),
    "api_port": ("Gunicorn", "API_PORT", "--api-port"),
}

#: prctl(2) option: the signal the calling process gets when its parent thread exits.
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _dies_with(parent: int, sig: int):
    """A ``preexec_fn``: the child gets ``sig`` when ``parent`` (this process) dies.

    Linux sends it when the thread that forked the child exits: the
    supervisor starts every process from its main thread. If the parent is
    already gone when the child asks, nobody would ever signal it, so it exits.
    """

    def set_parent_death_signal() -> None:
        if _libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            os._exit(127)
        if os.getppid() != parent:
            os._exit(1)

    return set_parent_death_signal


def _write_private(path: Path, text: str) -> None:
    """Write ``path`` as 0600 from its first byte, whatever the umask."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode on O_CREAT
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def make_private(top: Path, skip: Path | None = None) -> None:
    """Take group and other permissions off ``top`` and everything under it (but ``skip``).

    Files an earlier version left world-readable (Redis's AOF with the
    signing secret, logs) become the user's alone before anything starts.
    """
    if top.is_file():
        _take_away_others(top)
    for directory, subdirectories, files in os.walk(top):
        if skip is not None and Path(directory) == skip:
            subdirectories[:] = []
            continue
        for name in [".", *files]:
            _take_away_others(Path(directory, name))


def _take_away_others(path: Path) -> None:
    if path.is_symlink():  # its target is not ours to change
        return
    mode = path.stat().st_mode
    if mode & 0o077:
        path.chmod(mode & 0o7700)


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
    #: The environment the stack's own is made from (``None``: this process's, as it is then).
    base_env: dict[str, str] | None = None
    log_to_files: bool = True
    #: NGINX serves HTTPS with this certificate and key (PEM), plain HTTP without.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    #: Held from :meth:`prepare` until :meth:`stop`: one supervisor per run directory.
    _lock: IO[bytes] | None = field(default=None, repr=False)
    _state: runstate.RunState | None = field(default=None, repr=False)
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://127.0.0.1:{self.http_port}"

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    def env(self) -> dict[str, str]:
        """The environment every Python process of the stack gets."""
        env = dict(os.environ if self.base_env is None else self.base_env)
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

    @property
    def settings(self) -> Settings:
        """The settings every process of the stack reads (loaded once Redis's file exists)."""
        if self._settings is None:
            self._settings = load_settings(self.env())
        return self._settings

    def _output(self, name: str) -> IO | None:
        if not self.log_to_files:
            return None
        log = os.open(self.logs / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(log, "ab")

    def metrics_dir(self, name: str) -> Path:
        """Where the processes of ``name`` (api, worker) write their Prometheus values."""
        return self.run_dir / "metrics" / name

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        """Start one process: in its own session (its group is signalled as one), with
        umask 077, and dying with this process (:data:`DEATH_SIGNALS`)."""
        output = self._output(name)
        self.processes[name] = subprocess.Popen(
            argv,
            cwd=REPO_DIR,
            env=self.env() | (env or {}),
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            umask=CHILD_UMASK,
            preexec_fn=_dies_with(os.getpid(), DEATH_SIGNALS.get(name, signal.SIGTERM)),
        )
        if output:
            output.close()  # the child has its own copy
        self._record(name)

    def _record(self, name: str) -> None:
        """Save the process ``name`` and those below it in the state file (see runstate)."""
        process = self.processes.get(name)
        if self._state is None or process is None:
            return
        tree = [process.pid, *runstate.descendants(process.pid)]
        ids = [found for found in map(runstate.ProcessId.of, tree) if found is not None]
        self._state.processes[name] = ids
        runstate.write(self.run_dir, self._state)

    def _wait(self, name: str, ready, timeout: float) -> None:
        """Poll ``ready()`` until true; fail early if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process = self.processes.get(name)
            if process is not None and process.poll() is not None:
                raise StackError(f"{name} exited with {process.returncode}; {self._log_hint(name)}")
            if ready():
                self._record(name)
                return
            time.sleep(0.2)
        raise StackError(f"{name} not ready after {timeout:.0f}s; {self._log_hint(name)}")

    def _listens(self, name: str, port: int) -> bool:
        """Whether ``port``'s listening socket is held by process ``name`` (or one below it),
        not by whatever else listens there."""
        process = self.processes.get(name)
        if process is None:
            return False
        if not ports.listeners_visible():  # no /proc/net/tcp: its answers must do
            return True
        tree = [process.pid, *runstate.descendants(process.pid)]
        return bool(ports.holders(port, tree))

    def _redis_answers(self) -> bool:
        """Our redis-server answers the app user: a ping, and its own pid in INFO."""
        settings = self.settings.redis
        client = redis.Redis(
            host="127.0.0.1",
            port=self.redis_port,
            username=settings.master_user,
            password=settings.master_password,
            socket_connect_timeout=1,
            socket_timeout=3,
        )
        try:
            client.ping()
            return client.info("server")["process_id"] == self.processes["redis"].pid
        except redis.RedisError:
            return False
        finally:
            client.close()

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
        data.mkdir(mode=0o700, exist_ok=True)
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
        self._wait("redis", self._redis_answers, 20)

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
        """Gunicorn with src/gunicorn.conf.py, its control socket in the run directory.

        (Gunicorn's default, ~/.gunicorn/gunicorn.ctl, would be shared by every
        stack of the user: ``gunicornc`` would reach whichever started last.)
        The API also knows this stack's own address as one of ``[api] public_urls``.
        """
        self._spawn(
            "api",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(SRC_DIR / "gunicorn.conf.py"),
                "--control-socket",
                str(self.control_socket),
            ],
            env={
                "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir("api")),
                "MLSERVICE_API_PUBLIC_URLS": self.public_urls(),
            },
        )
        healthz = f"http://127.0.0.1:{self.api_port}/healthz"
        self._wait("api", lambda: self._listens("api", self.api_port) and _http_ok(healthz), 60)

    def public_urls(self) -> str:
        """``[api] public_urls`` and this stack's own address: the served contract may name
        the one it was asked from (``/docs`` "Try it out" calls it)."""
        return " ".join(dict.fromkeys((*(self.settings.api.public_urls or ()), self.url)))

    @property
    def control_socket(self) -> Path:
        """Gunicorn's control socket (``gunicornc -s PATH``)."""
        return self.run_dir / "gunicorn.ctl"

    def write_nginx_config(self) -> Path:
        """Render NGINX's configuration into run_dir from the repo's template and the settings."""
        self.logs.mkdir(parents=True, exist_ok=True)
        settings = load_settings(self.env())
        settings.artifact_dir.mkdir(parents=True, exist_ok=True)
        nginx_settings = self.run_dir / "nginx-settings.conf"
        nginx_conf.write(settings, nginx_settings)
        nginx_settings.chmod(0o600)  # NGINX runs as this user here (see below)
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
            umask=CHILD_UMASK,
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
        _write_private(self.run_dir / "ml-service.conf", server)
        main_conf = self.run_dir / "nginx.conf"
        # As root, NGINX workers would drop to "nobody", who cannot read the
        # artifact files this user wrote; run them as the same user.
        user = "user root;" if os.geteuid() == 0 else ""
        _write_private(
            main_conf, NGINX_MAIN_CONF.format(user=user, run=self.run_dir, logs=self.logs)
        )
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
        ours = lambda: self._listens("nginx", self.http_port)  # noqa: E731
        if wait_for_api:
            self._wait("nginx", lambda: ours() and _http_ok(f"{self.url}/healthz"), 20)
        else:
            self._wait("nginx", lambda: ours() and _port_open(self.http_port), 20)

    def start(self, ready_timeout: float = 90) -> None:
        """Check everything, then start every process in dependency order until ready."""
        self.prepare()
        self.launch(ready_timeout)

    def prepare(self) -> None:
        """Everything before the first process starts; a refusal here leaves nothing running.

        Takes the run directory's lock (one supervisor per directory), writes
        missing config files, checks the whole configuration, makes var/ and
        the config files private, stops what a killed supervisor of this
        directory left running, and checks that every port is free.
        """
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = runstate.lock(self.run_dir)
        if self._lock is None:
            other = runstate.read(self.run_dir)
            who = f" (pid {other.supervisor.pid}, {other.url})" if other else ""
            raise StackError(
                f"make run is already running from {self.run_dir}{who}; stop it first "
                "(Ctrl-C in its terminal), or give this one another --run-dir"
            )
        try:
            self._check_configuration()
            make_private(self.run_dir, skip=self._shared_artifacts())
            for path in (self.config_path, self.redis_config_path):
                make_private(path)
            self.logs.mkdir(mode=0o700, exist_ok=True)
            self._stop_leftovers()
            self._check_ports()
        except BaseException:
            self._release()
            raise
        self._state = runstate.RunState(
            supervisor=runstate.ProcessId.of(os.getpid()) or runstate.ProcessId(os.getpid(), 0),
            url=self.url,
            http_port=self.http_port,
            redis_port=self.redis_port,
            api_port=self.api_port,
            redis_host="127.0.0.1",
            config_path=str(Path(self.config_path).resolve()),
            redis_config_path=str(Path(self.redis_config_path).resolve()),
        )
        runstate.write(self.run_dir, self._state)

    def _check_configuration(self) -> None:
        """Both config files exist, and every setting and variable is valid, before any start.

        redis/render-acl.sh writes a missing redis/config.properties (random
        passwords) without rendering the ACL yet.
        """
        ensure_config_file(self.config_path)
        written = subprocess.run(
            ["sh", str(REPO_DIR / "redis" / "render-acl.sh"), str(self.redis_config_path)],
            umask=CHILD_UMASK,
        )
        if written.returncode != 0:
            raise StackError(f"{self.redis_config_path}: not written (see the line above)")
        self._settings = None
        preflight.check_default_model(self.settings)
        preflight.check_openapi_file(self.settings)
        preflight.check_password_hashing(self.settings)

    def _shared_artifacts(self) -> Path | None:
        """The artifact directory when its files are meant for others (left as they are)."""
        if self.settings.service.artifacts_world_readable:
            return self.settings.artifact_dir
        return None

    def _stop_leftovers(self) -> None:
        """Stop what an earlier supervisor of this run directory left running (it was killed).

        Leftovers are never joined: an old worker would take this stack's
        tasks, an old Redis would hold the port with other passwords. Each is
        known by its pid and start time, so a reused pid is left alone.
        """
        earlier = runstate.read(self.run_dir)
        if earlier is None:
            return
        left = [
            (name, ids) for name, tree in earlier.processes.items() for ids in tree if ids.alive()
        ]
        if left:
            named = "".join(f"\n  {name}: {ports.holder(ids.pid)}" for name, ids in left)
            print(
                f"mlservice: stopping what an earlier make run (pid {earlier.supervisor.pid}) "
                f"of {self.run_dir} left running:{named}",
                file=sys.stderr,
                flush=True,
            )
            try:
                _stop_all([ids for _, ids in left], timeout=15)
            except PermissionError:
                raise StackError(
                    "cannot stop them: they belong to another user (an earlier make run as "
                    "root?); stop them as that user"
                ) from None
        runstate.remove(self.run_dir)

    def _check_ports(self) -> None:
        """Every port this stack listens on is free; a busy one names its process."""
        problems = []
        seen: dict[int, str] = {}
        for attribute, (what, variable, flag) in PORT_FLAGS.items():
            port = getattr(self, attribute)
            named = f"port {port} ({what}; make run {variable}=..., {flag})"
            if port in seen:
                problems.append(f"{flag} and {seen[port]} are both {port}: give each its own port")
                continue
            seen[port] = flag
            try:
                if ports.in_use(port):
                    problems.append(f"{named} is {ports.describe_holder(port)}")
            except (OSError, OverflowError) as exc:  # out of range, or privileged
                problems.append(f"{named} cannot be used: {getattr(exc, 'strerror', None) or exc}")
        if problems:
            raise StackError(
                "cannot start:\n  "
                + "\n  ".join(problems)
                + "\nStop what holds it, or run on other ports, e.g. "
                "make run PORT=9000 REDIS_PORT=6380 API_PORT=8001"
            )
        metrics = self.settings.metrics
        port = (
            self.worker_metrics_port
            if self.worker_metrics_port is not None
            else metrics.worker_port
        )
        if port and ports.in_use(port, metrics.worker_host):
            print(
                f"mlservice: the Celery worker's metrics port {port} is "
                f"{ports.describe_holder(port)}: the worker serves no metrics "
                "(set [metrics] worker_port, MLSERVICE_METRICS_WORKER_PORT, to a free port or 0)",
                file=sys.stderr,
                flush=True,
            )

    def launch(self, ready_timeout: float = 90) -> None:
        """Start every process in dependency order and wait until each answers, as itself."""
        try:
            self.start_redis()
            self.start_worker()
            self.start_beat()
            self.start_api()
            self.start_nginx()
            self._wait("worker", lambda: _http_ok(f"{self.url}/readyz"), ready_timeout)
            self._check_still_running()
            for name in self.processes:
                self._record(name)
        except BaseException:
            self.stop()
            raise

    def _check_still_running(self) -> None:
        """No process died while the others were started (then "ready" would be a lie)."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise StackError(f"{name} exited with {process.returncode}; {self._log_hint(name)}")
        if not self._redis_answers():
            raise StackError(f"redis stopped answering; {self._log_hint('redis')}")

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
        self._release()

    def _release(self) -> None:
        """Forget the state and let go of the run directory's lock (nothing runs any more)."""
        if self._lock is not None:
            runstate.remove(self.run_dir)
            self._lock.close()
            self._lock = None
            self._state = None

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


def _stop_all(processes: list[runstate.ProcessId], timeout: float) -> None:
    """TERM each process (masters stop their workers), then KILL those left at ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for ids in processes:
            if ids.alive():
                try:
                    os.kill(ids.pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        while any(ids.alive() for ids in processes) and time.monotonic() < deadline:
            time.sleep(0.1)


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
                stack._record(name)
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
        _write_private(stored, secrets.token_urlsafe(18))
    return username, stored.read_text().strip()


def _tls_settings(cert: Path | None, key: Path | None) -> TlsSettings:
    """``[tls]`` as the settings say, ``--tls-cert`` and ``--tls-key`` overriding them
    (checked alike: both or neither, files that can be read)."""
    for flag, path in (("--tls-cert (TLS_CERT)", cert), ("--tls-key (TLS_KEY)", key)):
        if path is not None:
            try:
                readable_file(str(path))
            except ValueError as exc:
                raise ConfigError(f"{flag} {path} {exc}") from None
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
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
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
    # What this process writes (var/, generated config, the admin password) is the user's alone.
    os.umask(CHILD_UMASK)
    run_dir = args.run_dir.resolve()
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The same files the service would read (MLSERVICE_CONFIG, MLSERVICE_REDIS_CONFIG).
    config_path = Path(os.environ.get("MLSERVICE_CONFIG") or DEFAULT_CONFIG_PATH)
    redis_config_path = Path(os.environ.get("MLSERVICE_REDIS_CONFIG") or DEFAULT_REDIS_CONFIG_PATH)
    try:
        ensure_config_file(config_path)
        username, password = _admin_credentials(run_dir)
        tls = _tls_settings(args.tls_cert, args.tls_key)
        stack = Stack(
            run_dir=run_dir,
            http_port=args.port,
            redis_port=args.redis_port,
            api_port=args.api_port,
            config_path=config_path,
            redis_config_path=redis_config_path,
            log_to_files=False,
            extra_env={"MLSERVICE_ADMIN_USERNAME": username, "MLSERVICE_ADMIN_PASSWORD": password},
            tls_cert=tls.cert,
            tls_key=tls.key,
        )
        stack.prepare()  # nothing runs yet: a refusal here has nothing to stop
    except (ConfigError, StackError) as exc:
        sys.exit(f"mlservice: {exc}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        stack.launch()
        shell = ".venv/bin/mlservice"
        if run_dir != DEFAULT_RUN_DIR.resolve():
            shell += f" --run-dir {run_dir}"
        print(
            f"\nML Service is ready at {stack.url}\n"
            f"  admin user: {username}\n  admin password: {password}\n"
            f"  try: curl -u {username}:<password> {stack.url}/resource/auth\n"
            f"  API docs (Swagger UI): {stack.url}/docs\n"
            f"  users from the shell: {shell} users list\n"
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
