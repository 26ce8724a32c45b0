"""``make run`` owns its children: what it checks first, what it leaves, what dies with it.

Runs ``python -m mlservice.stack`` (what ``make run`` runs) on free ports with
a run directory and config files of its own, as a person would: a second
start on the same ports, a start from the same directory, a misspelled key,
a bad environment value, what a killed supervisor left behind, and at the
end the supervisor killed with SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import requests

from mlservice import ports, runstate
from mlservice.config import SRC_DIR, read_properties
from mlservice.stack import free_port
from tests.helpers import eventually

ADMIN_PASSWORD = "ownership-admin-password"


def clean_environment() -> dict[str, str]:
    """This process's environment without any MLSERVICE_* (the session stack's, a shell's)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MLSERVICE_")}


def make_run_argv(run_dir: Path, http: int, redis_port: int, api: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mlservice.stack",
        "--run-dir",
        str(run_dir),
        "--port",
        str(http),
        "--redis-port",
        str(redis_port),
        "--api-port",
        str(api),
    ]


def configured(directory: Path, config_text: str | None = None) -> dict[str, str]:
    """Config files of their own in ``directory``; the environment make run gets."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config.properties"
    if config_text is None:
        shutil.copyfile(SRC_DIR / "config.properties.template", config)
    else:
        config.write_text(config_text)
    return clean_environment() | {
        "MLSERVICE_CONFIG": str(config),
        "MLSERVICE_REDIS_CONFIG": str(directory / "redis.properties"),
        "MLSERVICE_SERVICE_ARTIFACT_DIR": str(directory / "run" / "artifacts"),
        "MLSERVICE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MLSERVICE_WORKERS": "1",
        "MLSERVICE_METRICS_WORKER_PORT": str(free_port()),
    }


def refused(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """A make run expected to refuse to start: it must exit by itself, with 1.

    Its stderr is returned without the line saying a new redis.properties was written
    (a test's fresh directory has none yet).
    """
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ML Service is ready" not in result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines(keepends=True)
    result.stderr = "".join(line for line in lines if not line.startswith("render-acl: wrote"))
    return result


def process_tree(pid: int) -> set[int]:
    return {pid, *runstate.descendants(pid)}


def gone(pid: int) -> bool:
    return runstate.start_time(pid) is None  # exited (a zombie counts: it runs nothing)


class Running:
    """A make run started by a test, with its ports, run directory and output."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.run_dir = directory / "run"
        # No admin password given: make run generates one into var/admin-password.
        self.env = configured(directory)
        del self.env["MLSERVICE_ADMIN_PASSWORD"]
        self.http, self.redis_port, self.api = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http}"
        self.log = directory / "make-run.log"
        with self.log.open("w") as output:
            self.process = subprocess.Popen(
                make_run_argv(self.run_dir, self.http, self.redis_port, self.api),
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text()

    def ready(self) -> bool:
        assert self.process.poll() is None, self.output()
        said = f"ML Service is ready at {self.url}" in self.output()
        return said and requests.get(self.url + "/readyz", timeout=5).status_code == 200


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """A make run, ready; the last test kills it (else it is stopped as Ctrl-C would)."""
    running = Running(tmp_path_factory.mktemp("first"))
    eventually(running.ready, timeout=180, message=lambda: running.output()[-3000:])
    yield running
    if running.process.poll() is None:
        running.process.send_signal(signal.SIGINT)
        try:
            running.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            running.process.kill()


def test_nothing_under_var_is_open_to_other_users(first):
    """Redis's AOF and RDB files, logs, artifacts, configs: the user's alone (0600, 0700)."""
    settings = read_properties(Path(first.env["MLSERVICE_REDIS_CONFIG"]))
    store = redis.Redis(
        port=first.redis_port,
        username=settings["MASTER_USER"],
        password=settings["REDIS_MASTER_PW"],
    )
    store.bgrewriteaof()  # a new AOF base and increment, written by Redis itself
    eventually(lambda: store.info("persistence")["aof_rewrite_in_progress"] == 0, timeout=60)
    store.save()  # an RDB file too (make run never asks for one)
    assert (first.run_dir / "redis" / "dump.rdb").is_file()
    password = (first.run_dir / "admin-password").read_text()
    token = requests.get(first.url + "/resource/auth", auth=("admin", password), timeout=30)
    upload = requests.post(
        first.url + "/resource/datasets",
        headers={"Authorization": f"Bearer {token.json()['token']}"},
        files={"file": ("numbers.csv", b"x,y\n1,a\n2,b\n3,a\n4,b\n", "text/csv")},
        timeout=60,
    )
    assert upload.status_code == 201, upload.text
    found = [first.run_dir, *first.run_dir.rglob("*")]
    assert any(path.name.endswith(".aof") for path in found)
    assert first.run_dir / "admin-password" in found
    assert any(path.parent.parent.name == "datasets" for path in found)  # an uploaded file
    open_to_others = [
        f"{path} {stat.filemode(path.lstat().st_mode)}"
        for path in found
        if not path.is_symlink() and path.lstat().st_mode & 0o077
    ]
    assert open_to_others == []
    for config in ("MLSERVICE_CONFIG", "MLSERVICE_REDIS_CONFIG"):
        assert stat.S_IMODE(Path(first.env[config]).stat().st_mode) == 0o600


def test_mlservice_commands_reach_the_running_stack(first):
    """No port given: the command finds this stack's Redis port and config in var/."""
    result = subprocess.run(
        [sys.executable, "-m", "mlservice", "--run-dir", str(first.run_dir), "users", "list"],
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    name, role, account_id = result.stdout.rstrip("\n").split("\t")
    assert (name, role, len(account_id)) == ("admin", "admin", 32)


def test_gunicorns_control_socket_is_in_the_run_directory(first):
    control = first.run_dir / "gunicorn.ctl"
    assert stat.S_ISSOCK(control.stat().st_mode)
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(str(control))  # the stack's Gunicorn listens there


def test_a_second_make_run_on_the_same_ports_names_them_and_harms_nothing(first, tmp_path):
    before = {pid: runstate.start_time(pid) for pid in process_tree(first.process.pid)}
    result = refused(
        make_run_argv(tmp_path / "run", first.http, first.redis_port, first.api),
        configured(tmp_path),
    )
    lines = result.stderr.splitlines()
    assert lines[0] == "mlservice: cannot start:"
    assert lines[1].startswith(f"  port {first.http} (NGINX; make run PORT=..., --port) ")
    assert "is in use by nginx (pid " in lines[1]
    assert lines[2].startswith(
        f"  port {first.redis_port} (redis-server; make run REDIS_PORT=..., --redis-port) "
        "is in use by redis-server (pid "
    )
    assert lines[3].startswith(f"  port {first.api} (Gunicorn; make run API_PORT=..., --api-port)")
    assert "-m gunicorn" in lines[3]
    assert not (tmp_path / "run" / "redis").exists()  # nothing was started
    assert first.ready()
    assert {pid: runstate.start_time(pid) for pid in before} == before  # the same processes


def test_a_second_make_run_of_the_same_directory_is_refused(first, tmp_path):
    result = refused(make_run_argv(first.run_dir, free_port(), free_port(), free_port()), first.env)
    assert result.stderr == (
        f"mlservice: make run is already running from {first.run_dir} "
        f"(pid {first.process.pid}, {first.url}); stop it first (Ctrl-C in its terminal), "
        "or give this one another --run-dir\n"
    )
    assert first.ready()


def test_killing_the_supervisor_leaves_no_process_of_the_stack(first):
    """SIGKILL: no clean-up code runs, the processes die with it (parent-death signals)."""
    started = process_tree(first.process.pid) - {first.process.pid}
    recorded = {ids.pid for tree in runstate.read(first.run_dir).processes.values() for ids in tree}
    assert recorded <= started
    names = {Path(f"/proc/{pid}/comm").read_text().strip() for pid in started}
    assert {"redis-server", "nginx"} <= names
    assert len(started) >= 9  # redis, worker + 2 pool, beat, gunicorn + 1, nginx + 2
    first.process.kill()
    first.process.wait(timeout=30)
    eventually(
        lambda: all(gone(pid) for pid in started),
        timeout=60,
        message=lambda: f"left running: {[pid for pid in started if not gone(pid)]}",
    )
    assert not any(ports.in_use(port) for port in (first.http, first.redis_port, first.api))


@pytest.mark.parametrize(
    "config, message",
    [
        (
            "[auth_info]\nexpiry = 3\nexpiry_time_unit = days\n[servce]\nmax_upload_mb = 5\n",
            "section [servce] is not known; did you mean [service]?",
        ),
        (
            "[auth_info]\nexpiry = 3\nexpiry_time_unit = days\n[service]\nmax_uplod_mb = 5\n",
            "[service] max_uplod_mb is not a setting; did you mean max_upload_mb?",
        ),
    ],
    ids=["section", "key"],
)
def test_a_misspelled_setting_refuses_the_start_naming_it(tmp_path, config, message):
    env = configured(tmp_path, config)
    http, redis_port, api = free_port(), free_port(), free_port()
    result = refused(make_run_argv(tmp_path / "run", http, redis_port, api), env)
    assert result.stderr == f"mlservice: {env['MLSERVICE_CONFIG']}: {message}\n"
    assert not any(ports.in_use(port) for port in (http, redis_port, api))
    assert not (tmp_path / "run" / "redis").exists()


@pytest.mark.parametrize(
    "variable, value, message",
    [
        (
            "MLSERVICE_SERVICE_MAX_UPLOAD_MB",
            "lots",
            "environment variable MLSERVICE_SERVICE_MAX_UPLOAD_MB = 'lots' is not an integer "
            "(it overrides [service] max_upload_mb)",
        ),
        (
            "MLSERVICE_SERVICE_MAX_UPLOD_MB",
            "5",
            "environment variable MLSERVICE_SERVICE_MAX_UPLOD_MB is not a setting; "
            "did you mean MLSERVICE_SERVICE_MAX_UPLOAD_MB?",
        ),
    ],
    ids=["value", "name"],
)
def test_an_environment_error_names_the_variable(tmp_path, variable, value, message):
    env = configured(tmp_path) | {variable: value}
    result = refused(make_run_argv(tmp_path / "run", free_port(), free_port(), free_port()), env)
    assert result.stderr == f"mlservice: {message}\n"
    assert not (tmp_path / "run" / "redis").exists()


def test_what_a_killed_supervisor_left_running_is_stopped_never_joined(tmp_path):
    """A redis-server an earlier make run of this directory left (its supervisor was killed
    before parent-death signals): named and stopped before anything else; its port is then
    free, and the start goes on to the next check (here: NGINX's port, held by this test)."""
    env = configured(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    redis_port = free_port()
    leftover = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
        cwd=run_dir,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        eventually(lambda: ports.holders(redis_port, [leftover.pid]), timeout=30)
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        runstate.write(
            run_dir,
            runstate.RunState(
                supervisor=runstate.ProcessId(dead.pid, 1),
                url="http://127.0.0.1:1",
                http_port=1,
                redis_port=redis_port,
                api_port=2,
                redis_host="127.0.0.1",
                config_path=env["MLSERVICE_CONFIG"],
                redis_config_path=env["MLSERVICE_REDIS_CONFIG"],
                processes={"redis": [runstate.ProcessId.of(leftover.pid)]},
            ),
        )
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            http = busy.getsockname()[1]
            result = refused(make_run_argv(run_dir, http, redis_port, free_port()), env)
        assert leftover.wait(timeout=30) == 0  # TERM: Redis's own clean exit
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()
    lines = result.stderr.splitlines()
    assert lines[:2] == [
        f"mlservice: stopping what an earlier make run (pid {dead.pid}) of {run_dir} left running:",
        f"  redis: redis-server (pid {leftover.pid}: redis-server 127.0.0.1:{redis_port})",
    ]
    assert lines[2] == "mlservice: cannot start:"
    assert lines[3].startswith(f"  port {http} (NGINX; make run PORT=..., --port) is in use by ")
    assert f"port {redis_port}" not in result.stderr  # the leftover's port was freed first
    assert runstate.read(run_dir) is None
