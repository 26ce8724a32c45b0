"""The Docker Compose stack, scaled out to 3 api and 3 worker replicas, once per session.

Opt-in: ``make test-compose`` sets MLSERVICE_TEST_COMPOSE=1 (Docker must run;
on a machine without a registry, ``/work/shared/tools/docker-standins`` starts
it and builds stand-in base images). Anywhere else these tests are skipped,
so ``make test`` collects them and runs none: they need Docker and minutes.

The stack is the repository's own docker-compose.yml under its own project
name and a free host port, brought down with its volumes at the end. Nothing
here uses tests/conftest.py's native stack. The session prints a tally of
requests per api replica and trainings per worker (``pytest -s`` shows it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
import requests

from mlservice.config import REPO_DIR
from mlservice.stack import free_port
from tests.helpers import eventually

ENABLED = os.environ.get("MLSERVICE_TEST_COMPOSE") == "1"
SKIP_REASON = (
    "Docker Compose scale-out tests: run them with `make test-compose` (needs a Docker "
    "engine; builds and starts docker-compose.yml with 3 api and 3 worker replicas)"
)
PROJECT = os.environ.get("MLSERVICE_COMPOSE_PROJECT", "mlservice-scale-test")
ADMIN = ("admin", "compose-test-admin-password")
API_REPLICAS = 3
WORKER_REPLICAS = 3
#: Building the images and starting 3 + 3 replicas on 2 busy cores takes minutes.
START_TIMEOUT = 1200


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip every test of this directory unless ``make test-compose`` asked for them."""
    if not ENABLED:
        pytest.skip(SKIP_REASON)


def compose_command() -> list[str]:
    """``docker compose`` (v2) when there is one, else Debian's ``docker-compose`` (v1)."""
    chosen = os.environ.get("MLSERVICE_COMPOSE")  # make test-compose passes its $(COMPOSE)
    if chosen:
        return chosen.split()
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed")


@dataclass
class ComposeStack:
    """The running compose project: HTTP through its NGINX, and its containers.

    ``get``/``post``/``request`` have the signature of tests/conftest.py's
    ``Client``, so tests/helpers.py's ``upload``, ``train`` and ``wait_ready`` work.
    """

    command: list[str]
    url: str
    env: dict[str, str]
    session: requests.Session = field(default_factory=requests.Session)
    #: Container host name -> container name, for every container seen (stopped ones too).
    names: dict[str, str] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.command, "-p", PROJECT, *args],
            cwd=REPO_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def docker(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
        return result.stdout

    def containers(self, service: str, running: bool = True) -> dict[str, str]:
        """The service's containers: host name (what X-Served-By and ``worker`` say) -> name."""
        filters = [
            f"label=com.docker.compose.project={PROJECT}",
            f"label=com.docker.compose.service={service}",
        ]
        ids = self.docker(
            "ps", "-q", *(["-a"] if not running else []), *[a for f in filters for a in ("-f", f)]
        ).split()
        if not ids:
            return {}
        found = {}
        for info in json.loads(self.docker("inspect", *ids)):
            found[info["Config"]["Hostname"]] = info["Name"].lstrip("/")
        self.names.update(found)
        return found

    def request(self, method: str, path: str, token: str | None = None, **kwargs):
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("timeout", 120)
        return self.session.request(method, self.url + path, headers=headers, **kwargs)

    def get(self, path: str, token: str | None = None, **kwargs):
        return self.request("GET", path, token, **kwargs)

    def post(self, path: str, token: str | None = None, **kwargs):
        return self.request("POST", path, token, **kwargs)

    def token(self, username: str, password: str) -> str:
        response = self.get("/resource/auth", auth=(username, password))
        assert response.status_code == 200, response.text
        return response.json()["token"]

    def workers_ready(self, count: int) -> bool:
        """``/readyz`` through NGINX: Redis answers and ``count`` Celery workers ping back."""
        try:
            response = requests.get(f"{self.url}/readyz", timeout=10)
        except requests.RequestException:
            return False
        return response.status_code == 200 and response.json().get("workers") == count


def _up(stack: ComposeStack) -> None:
    """Build and start the scaled-out project, until NGINX answers and every worker pings.

    Compose v1 gives up on NGINX when an api replica is not healthy yet (slow
    on busy cores); ``up`` again then starts what is missing, and no more.
    """
    scale = ["--scale", f"api={API_REPLICAS}", "--scale", f"worker={WORKER_REPLICAS}"]
    result = stack.compose("up", "--build", "-d", *scale)
    deadline = time.monotonic() + START_TIMEOUT
    while result.returncode != 0:
        if time.monotonic() > deadline:
            pytest.fail(f"compose up failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        time.sleep(10)
        result = stack.compose("up", "-d", "--no-recreate", *scale)
    eventually(
        lambda: stack.workers_ready(WORKER_REPLICAS),
        timeout=max(60.0, deadline - time.monotonic()),
        interval=2,
        message=f"/readyz never counted {WORKER_REPLICAS} workers",
    )


@pytest.fixture(scope="session")
def compose(tmp_path_factory) -> ComposeStack:
    """docker-compose.yml up with 3 api and 3 worker replicas; down (volumes too) at the end."""
    env = os.environ | {
        "MLSERVICE_PORT": str(free_port()),
        "MLSERVICE_ADMIN_USERNAME": ADMIN[0],
        "MLSERVICE_ADMIN_PASSWORD": ADMIN[1],
        # 2 Gunicorn workers per replica (not 2 x CPUs + 1): six replicas share 2 cores.
        "MLSERVICE_WORKERS": "2",
    }
    stack = ComposeStack(compose_command(), f"http://127.0.0.1:{env['MLSERVICE_PORT']}", env)
    stack.compose("down", "-v", "--remove-orphans")  # what an interrupted run left
    try:
        _up(stack)
        stack.containers("api")
        stack.containers("worker")
        yield stack
    finally:
        logs = tmp_path_factory.mktemp("compose") / "compose.log"
        logs.write_text(stack.compose("logs", "--no-color", timeout=120).stdout)
        print(f"\ncompose logs: {logs}")
        stack.compose("down", "-v", "--remove-orphans")


@dataclass
class Tally:
    """Requests per api replica and trainings per worker, per test phase, for the report."""

    requests: dict[str, Counter] = field(default_factory=dict)
    trainings: dict[str, Counter] = field(default_factory=dict)

    def table(self, names: dict[str, str]) -> str:
        lines = []
        for title, phases in (("requests", self.requests), ("trainings", self.trainings)):
            if not phases:
                continue
            hosts = sorted({host for counts in phases.values() for host in counts})
            lines.append(f"| {title} per | " + " | ".join(phases) + " | total |")
            lines.append("|---" * (len(phases) + 2) + "|")
            for host in hosts:
                counts = [phases[phase][host] for phase in phases]
                name = names.get(host, host)
                lines.append(
                    f"| {name} ({host}) | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |"
                )
            lines.append("")
        return "\n".join(lines)


@pytest.fixture(scope="session")
def tally(compose: ComposeStack) -> Tally:
    """Filled by the tests; printed as a table at the end of the session."""
    counts = Tally()
    yield counts
    print("\n\nScale-out tally (docker-compose, 3 api x 3 worker replicas)\n")
    print(counts.table(compose.names))
