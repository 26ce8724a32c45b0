"""``make run`` heals: Redis or the Celery worker killed (-9) comes back, then Ctrl-C stops it all.

Runs ``python -m mlservice.stack`` (what ``make run`` runs) on free ports,
with configuration files of its own, as a person would in a terminal.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from mlservice.config import SRC_DIR
from mlservice.stack import free_port
from tests.helpers import eventually


def children(pid: int) -> dict[int, str]:
    """The direct child processes of ``pid``: their command lines."""
    pids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {
        int(child): Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        for child in pids
    }


def child_running(pid: int, word: str) -> int:
    """The child of ``pid`` whose command line has ``word``."""
    matches = [child for child, command in children(pid).items() if word in command]
    assert len(matches) == 1, children(pid)
    return matches[0]


@pytest.fixture(scope="module")
def make_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("make-run")
    config = run_dir / "config.properties"
    shutil.copyfile(SRC_DIR / "config.properties.template", config)
    ports = {"--port": free_port(), "--redis-port": free_port(), "--api-port": free_port()}
    env = os.environ | {
        "MLSERVICE_CONFIG": str(config),
        "MLSERVICE_REDIS_CONFIG": str(run_dir / "redis.properties"),
        "MLSERVICE_SERVICE_ARTIFACT_DIR": str(run_dir / "artifacts"),
        "MLSERVICE_ADMIN_PASSWORD": "make-run-admin-password",
        "MLSERVICE_WORKERS": "1",
    }
    log = (run_dir / "make-run.log").open("w+")
    argv = [sys.executable, "-m", "mlservice.stack", "--run-dir", str(run_dir)]
    for flag, port in ports.items():
        argv += [flag, str(port)]
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{ports['--port']}"

    def ready() -> bool:
        """Ready as make run itself says it (after its own checks), not at the first 200:
        a process killed before then fails the start instead of being supervised."""
        assert process.poll() is None, Path(log.name).read_text()
        said = f"ML Service is ready at {url}" in Path(log.name).read_text()
        return said and requests.get(url + "/readyz", timeout=5).status_code == 200

    eventually(ready, timeout=120, message="make run did not get ready")
    yield process, url, Path(log.name)
    if process.poll() is None:  # the test below failed: stop it as Ctrl-C would
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()


def test_a_killed_redis_and_worker_come_back(make_run):
    process, url, log = make_run
    for word in ("redis-server", " worker -Q"):
        os.kill(child_running(process.pid, word), signal.SIGKILL)
        time.sleep(1.5)
        eventually(
            lambda: requests.get(url + "/readyz", timeout=5).status_code == 200,
            timeout=90,
            message=f"the stack did not heal after {word.strip()} was killed",
            retry_on=requests.RequestException,
        )
    token = requests.get(
        url + "/resource/auth", auth=("admin", "make-run-admin-password"), timeout=10
    )
    assert token.status_code == 200  # the account survived in Redis's AOF
    output = log.read_text()
    assert "mlservice: redis exited with -9; restarting it in 1 s" in output
    assert "mlservice: worker exited with -9; restarting it in 1 s" in output
    assert process.poll() is None


def test_ctrl_c_stops_every_process(make_run):
    process, _, _ = make_run
    started = children(process.pid)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=90) == 0
    for pid in started:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )
