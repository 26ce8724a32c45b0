"""The serving peers ``make bench`` measures the service against.

MLflow serve, BentoML (its adaptive batching off and on) and Seldon MLServer
(its scikit-learn runtime) each serve the same fitted pipeline on 2 workers,
each from its own environment, so that the service's dependencies stay its
own. This module knows, for each peer, how to start it on free loopback ports,
the request that carries one row in its own convention, where the prediction
sits in its answer, and how to stop every process it started: BentoML starts
its workers in sessions of their own, so stopping a process group is not
enough and the process tree is collected and stopped PID by PID.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from mlservice.stack import free_port

BENCH = Path(__file__).resolve().parent

PEERS = ("mlflow", "bentoml", "bentoml_batching", "mlserver")
TITLES = {
    "mlflow": "MLflow serve",
    "bentoml": "BentoML",
    "bentoml_batching": "BentoML, adaptive batching",
    "mlserver": "MLServer",
}
# The environment (make bench's venv) each peer runs from, and the package whose version
# the results record.
ENVIRONMENTS = {
    "mlflow": "mlflow",
    "bentoml": "bentoml",
    "bentoml_batching": "bentoml",
    "mlserver": "mlserver",
}
START_SECONDS = 180


@dataclass
class Peer:
    """One running peer: its first process, its predict URL and its log."""

    name: str
    process: subprocess.Popen
    url: str
    log: Path

    def body(self, row: dict[str, Any]) -> str:
        """One row as this peer takes it (a JSON body)."""
        if self.name == "mlflow":
            return json.dumps({"dataframe_records": [row]})
        if self.name.startswith("bentoml"):
            return json.dumps({"rows": [row]})
        return json.dumps(v2_request(row))

    def prediction(self, answer: Any) -> int:
        """The class index this peer answered for one row."""
        if self.name == "mlflow":
            return answer["predictions"][0]
        if self.name.startswith("bentoml"):
            return answer[0]
        return answer["outputs"][0]["data"][0]

    def log_tail(self) -> str:
        """The end of its log, for an error message (the bench's files go when it ends)."""
        return self.log.read_text(errors="replace")[-2000:]

    def stop(self, timeout: float = 30) -> None:
        """TERM the first process (and its group), then KILL whatever of its tree lingers."""
        tree = _tree(self.process.pid)
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        for pid, started in tree:
            while _start_time(pid) == started and time.monotonic() < deadline:
                time.sleep(0.1)
            if _start_time(pid) == started:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def v2_request(row: dict[str, Any]) -> dict:
    """An Open Inference Protocol (V2) request for one row, in MLServer's convention:
    a request-level ``pd`` content type and one input per column (rows without
    missing values: the type is read from each value)."""
    inputs = []
    for name, value in row.items():
        datatype = "BYTES" if isinstance(value, str) else "INT64" if type(value) is int else "FP64"
        inputs.append({"name": name, "shape": [1], "datatype": datatype, "data": [value]})
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


def version(python: str, name: str) -> str:
    """The version of a peer's package in its environment."""
    return subprocess.run(
        [python, "-c", f"import importlib.metadata as m; print(m.version({name!r}))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def start(name: str, python: str, pipeline: Path, work: Path) -> Peer:
    """Start one peer serving the pickled pipeline; returns once it answers its readiness URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    work = work / name
    work.mkdir(parents=True, exist_ok=True)
    log = work / "server.log"
    bin_dir = Path(python).parent
    # Each server starts its own tools (uvicorn, bentoml, mlserver) from PATH: its environment's.
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    if name == "mlflow":
        model_dir = work / "model"
        subprocess.run(
            [python, str(BENCH / "mlflow_save.py"), str(pipeline), str(model_dir)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        argv = [str(bin_dir / "mlflow"), "models", "serve", "-m", str(model_dir), "-w", "2"]
        argv += ["-p", str(port), "-h", "127.0.0.1", "--env-manager", "local"]
        ready, predict = f"{url}/ping", f"{url}/invocations"
    elif name.startswith("bentoml"):
        argv = [str(bin_dir / "bentoml"), "serve", "bentoml_service:Pipeline"]
        argv += ["--working-dir", str(BENCH), "--host", "127.0.0.1", "--port", str(port)]
        env |= {
            "BENCH_PIPELINE": str(pipeline),
            "BENCH_BATCHING": "1" if name == "bentoml_batching" else "0",
            "BENTOML_HOME": str(work / "bentoml-home"),
            "BENTOML_DO_NOT_TRACK": "True",
        }
        ready, predict = f"{url}/readyz", f"{url}/predict"
    elif name == "mlserver":
        argv = [python, str(BENCH / "mlserver_serve.py"), str(pipeline), str(work / "server")]
        argv += [str(port), str(free_port()), str(free_port())]
        ready, predict = f"{url}/v2/models/pipeline/ready", f"{url}/v2/models/pipeline/infer"
    else:
        raise ValueError(f"unknown peer {name!r}; the peers are {', '.join(PEERS)}")
    with open(log, "wb") as output:
        process = subprocess.Popen(
            argv,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd=work,
        )
    peer = Peer(name, process, predict, log)
    deadline = time.monotonic() + START_SECONDS
    while not _ok(ready):
        if process.poll() is not None or time.monotonic() > deadline:
            peer.stop()
            raise RuntimeError(
                f"{TITLES[name]} did not start; the end of its log:\n{peer.log_tail()}"
            )
        time.sleep(0.5)
    return peer


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _tree(pid: int) -> list[tuple[int, int]]:
    """A process and all its descendants, as (PID, start time) so a reused PID is never hit."""
    found: list[tuple[int, int]] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        started = _start_time(current)
        if started is None:
            continue
        found.append((current, started))
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += map(int, (task / "children").read_text().split())
        except OSError:  # it exited meanwhile
            pass
    return found


def _start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks after boot), None once the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # exited, not yet reaped by its parent
        return None
    return int(fields[19])
