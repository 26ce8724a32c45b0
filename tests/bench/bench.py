"""``make bench``: the service against its serving peers, the HTTP floor and plain scripts.

Starts the real stack (redis-server, Celery, Gunicorn with its defaults,
NGINX) on free loopback ports, then measures in one run on this machine:

* single-row predict at concurrency 16 (wrk): this service through NGINX (by
  model id, by registered name and alias: ``name@production``, and the same row
  as an Open Inference Protocol (V2) request, one input per column), a
  constant-answer Flask endpoint behind the same NGINX (the floor) twice (on
  the service's Gunicorn settings and on 2 sync workers), and the peers
  serving the same fitted pipeline on 2 workers each (``mlflow models
  serve``, BentoML with its adaptive batching off and on, Seldon MLServer's
  scikit-learn runtime: see peers.py); for LogisticRegression and
  RandomForest(100), alternating the contenders (A B C D ... A B C D ...) so
  that machine drift hits all alike, each peer checked first against the
  service's answers;
* a 100k-row batch predict through the service in JSON records, MLflow's
  ``dataframe_split``, columnar JSON, Arrow IPC and Parquet, against
  in-process inference;
* a scoring job over a 1M-row stored data set (rows/s against in-process
  inference, and the API's and the Celery worker's peak RSS growth);
* a 1 GiB CSV upload (MB/s, and the API workers' peak RSS growth);
* training wall time (request to ``ready``) against a plain script;
* a hyperparameter search's trials per minute with 1 and with 2 Celery worker
  processes, on the same search (the same trials: its leaderboard is the same).

Prints one table and writes it as JSON (``--out``). Each peer runs from its
own environment (``--mlflow-python``, ``--bentoml-python``,
``--mlserver-python``), never the service's; ``--only`` and ``--peers`` run
parts of it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import peers
import pyarrow as pa
import pyarrow.parquet as pq
import requests

from mlservice import redis_client, security
from mlservice.config import SRC_DIR, load_settings
from mlservice.serving import inputs
from mlservice.stack import Stack, free_port
from mlservice.store import bundles

REPO = Path(__file__).resolve().parents[2]
BENCH = Path(__file__).resolve().parent

TARGET = "churn"
PARTS = ("training", "single-row", "batch", "scoring", "upload", "search")
# Each peer's environment, built by make bench from tests/bench/requirements*.txt.
VENVS = {
    "mlflow": ".bench-venv",
    "bentoml": ".bench-bentoml-venv",
    "mlserver": ".bench-mlserver-venv",
}
PROBE_ROWS = 32  # rows every peer must answer as the service does before it is measured
JSON_TYPE = {"Content-Type": "application/json"}
MODELS = {
    "LogisticRegression": ("LogisticRegression", {"max_iter": 1000}),
    "RandomForest(100)": ("RandomForestClassifier", {"n_estimators": 100, "random_state": 0}),
}
TARGETS = {
    "floor_ratio": 0.6,  # of the better of the two floors
    "mlflow_ratio": 10.0,
    "peer_ratio": 3.0,  # of the fastest peer
    "p99_ratio": 2.0,  # of that floor's p99
    "alias_ratio": 0.95,  # predict by name@alias / predict by id
    "v2_ratio": 0.9,  # V2 infer (JSON, one input per column) / the native JSON route
    "log_ratio": 0.9,  # single-row predict with the prediction log on / off
    "batch_binary_ratio": 0.8,  # Arrow, Parquet
    "batch_json_ratio": 0.4,  # every JSON shape
    "scoring_ratio": 0.7,
    "scoring_rss_mb": 256.0,
    "upload_mb_s": 200.0,
    "upload_rss_mb": 64.0,
    "train_ratio": 1.15,
    "train_slack_s": 0.5,
    "search_speedup": 1.5,  # trials per minute, 2 worker processes / 1
}
#: The search timed with 1 and then 2 worker processes: 12 forests of 20-60 trees, 3 folds.
SEARCH_TRIALS = 12


def synthetic_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """Six numbers and three categories (with missing values), and a yes/no target."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 90, rows).astype(float),
            "income": rng.lognormal(10, 0.5, rows).round(2),
            "tenure": rng.exponential(5, rows).round(2),
            "visits": rng.poisson(12, rows).astype(float),
            "balance": rng.normal(1000, 400, rows).round(2),
            "score": rng.uniform(0, 1, rows).round(4),
            "city": rng.choice(["paris", "lyon", "nice", "lille", "brest"], rows).astype(object),
            "plan": rng.choice(["free", "basic", "pro"], rows, p=[0.5, 0.3, 0.2]).astype(object),
            "device": rng.choice(["ios", "android", "web"], rows).astype(object),
        }
    )
    frame.loc[rng.random(rows) < 0.03, "income"] = np.nan
    frame.loc[rng.random(rows) < 0.03, "city"] = None
    logit = (
        (frame["age"] - 50) / 20
        - frame["tenure"] / 5
        + (frame["plan"] == "free") * 0.8
        + frame["score"]
        - 0.5
        + rng.normal(0, 1, rows)
    )
    frame[TARGET] = np.where(logit > 0, "yes", "no")
    return frame


class Api:
    """HTTP calls to the service through NGINX, with a bearer token."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.url = url
        self.http = requests.Session()
        token = self.http.get(f"{url}/resource/auth", auth=(username, password)).json()["token"]
        self.token = token
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, expect: int = 200, **kwargs) -> requests.Response:
        response = self.http.request(method, self.url + path, timeout=600, **kwargs)
        if response.status_code != expect:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response


# --- the contenders' servers ---------------------------------------------------------------


def start_service(run_dir: Path, password: str) -> Stack:
    """The service with its defaults (Gunicorn workers and threads from gunicorn.conf.py)."""
    run_dir.mkdir(parents=True)
    config = run_dir / "config.properties"
    shutil.copyfile(SRC_DIR / "config.properties.template", config)
    stack = Stack(
        run_dir=run_dir,
        http_port=free_port(),
        redis_port=free_port(),
        api_port=free_port(),
        config_path=config,
        redis_config_path=run_dir / "redis.properties",
        extra_env={
            "MLSERVICE_ADMIN_USERNAME": "bench",
            "MLSERVICE_ADMIN_PASSWORD": password,
            "MLSERVICE_SERVICE_ARTIFACT_DIR": str(run_dir / "artifacts"),
        },
    )
    stack.start()
    return stack


def start_floor(service: Stack, run_dir: Path, sync_workers: int | None = None) -> Stack:
    """The constant-answer Flask app behind its own NGINX: on the service's Gunicorn
    settings, or on ``sync_workers`` sync workers (command-line flags override the file)."""
    floor = Stack(
        run_dir=run_dir,
        http_port=free_port(),
        redis_port=service.redis_port,
        api_port=free_port(),
        config_path=service.config_path,
        redis_config_path=service.redis_config_path,
        extra_env=service.extra_env,
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    floor.logs.mkdir(exist_ok=True)
    argv = [sys.executable, "-m", "gunicorn", "-c", str(SRC_DIR / "gunicorn.conf.py")]
    argv += ["--pythonpath", str(BENCH)]  # floor.py, beside this file
    if sync_workers:
        argv += ["-k", "sync", "-w", str(sync_workers)]
    floor._spawn("api", [*argv, "floor:app"])
    floor._wait("api", lambda: _ok(f"http://127.0.0.1:{floor.api_port}/healthz"), 60)
    floor.start_nginx()
    return floor


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


# --- measurements ----------------------------------------------------------------------------


def wrk(url: str, body: str, headers: dict[str, str], seconds: int, work: Path) -> dict:
    """wrk -t2 -c16 with a JSON POST; requests/s, p50, p99 and errors."""
    script = work / "post.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body)}"]
    lines += [f'wrk.headers["{k}"] = {json.dumps(v)}' for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    output = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    total = int(re.search(r"(\d+) requests in", output).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    answers = int(non2xx.group(1)) if non2xx else 0
    socket_errors = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, sockets.groups()), strict=True))
        if sockets
        else {}
    )
    return {
        "rps": rps,
        "p50_ms": _latency(output, "50%"),
        "p99_ms": _latency(output, "99%"),
        "errors": answers + sum(socket_errors.values()),
        "non_2xx": answers,
        "socket_errors": socket_errors,
        "requests": total,
    }


def _latency(output: str, percentile: str) -> float:
    value, unit = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wait_model(api: Api, model_id: str, started: float) -> tuple[float, float, dict]:
    """Seconds until ``ready`` and until the compile step decided the engine."""
    ready_at = None
    while True:
        record = api.call("GET", f"/resource/models/{model_id}").json()
        if record["status"] == "failed":
            raise RuntimeError(f"training failed: {record.get('error')}")
        if record["status"] == "ready" and ready_at is None:
            ready_at = time.perf_counter() - started
        if ready_at is not None and not record["engine"]["reason"].startswith("compiling"):
            return ready_at, time.perf_counter() - started, record
        time.sleep(0.02)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def upload_gib(api: Api, stack: Stack, work: Path, table: pd.DataFrame) -> dict:
    """Stream a 1 GiB CSV through NGINX (curl), sampling every API worker's RSS meanwhile."""
    print("bench: writing and uploading 1 GiB", file=sys.stderr)
    path = work / "big.csv"
    chunk = table.to_csv(index=False, header=False).encode()
    size = 1024**3
    with open(path, "wb") as handle:  # whole copies of the table: just over 1 GiB
        handle.write(table.to_csv(index=False).encode().split(b"\n", 1)[0] + b"\n")
        while handle.tell() < size:
            handle.write(chunk)
    size = path.stat().st_size
    with PeakRss(stack.api_worker_pids()) as rss:
        started = time.perf_counter()
        answer = upload_file(api, path, "text/csv")
        seconds = time.perf_counter() - started
    path.unlink()
    profiled = wait_dataset(api, answer["id"])
    profile_seconds = time.perf_counter() - started
    api.call("DELETE", f"/resource/datasets/{answer['id']}", expect=204)
    return {
        "bytes": size,
        "seconds": seconds,
        "mb_per_s": size / 1e6 / seconds,
        "status_at_answer": answer.get("status", "ready"),
        "ready_after_s": profile_seconds,
        "rows": profiled.get("rows"),
        "rss_growth_mb": rss.growth_mb,
    }


def batch_bodies(frame: pd.DataFrame) -> dict[str, tuple[bytes, str, str]]:
    """The same rows in each accepted shape: (body, Content-Type, Accept)."""
    records = [{k: (None if v != v else v) for k, v in r.items()} for r in frame.to_dict("records")]
    columns = {
        name: [None if v != v else v for v in frame[name].tolist()] for name in frame.columns
    }
    rows = [[record[name] for name in frame.columns] for record in records]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    arrow = pa.BufferOutputStream()
    with pa.ipc.new_stream(arrow, table.schema) as writer:
        writer.write_table(table)
    parquet = pa.BufferOutputStream()
    pq.write_table(table, parquet)
    json_type, arrow_type = "application/json", "application/vnd.apache.arrow.stream"
    parquet_type = "application/vnd.apache.parquet"
    return {
        "JSON records": (json.dumps(records).encode(), json_type, json_type),
        "MLflow dataframe_split": (
            json.dumps(
                {"dataframe_split": {"columns": list(frame.columns), "data": rows}}
            ).encode(),
            json_type,
            json_type,
        ),
        "columnar JSON": (json.dumps({"columns": columns}).encode(), json_type, json_type),
        "Arrow IPC": (arrow.getvalue().to_pybytes(), arrow_type, arrow_type),
        "Parquet": (parquet.getvalue().to_pybytes(), parquet_type, parquet_type),
    }


def _predictions(response: requests.Response) -> list:
    """The ``prediction`` column of an answer in JSON, Arrow IPC or Parquet."""
    kind = response.headers["Content-Type"].split(";")[0]
    if kind == "application/json":
        return response.json()["predictions"]
    if kind == "application/vnd.apache.arrow.stream":
        table = pa.ipc.open_stream(response.content).read_all()
    else:
        table = pq.read_table(pa.BufferReader(response.content))
    return table.column("prediction").to_pylist()


def model_input(frame: pd.DataFrame, bundle) -> pd.DataFrame:
    """The frame as the pipeline takes it (missing text as NaN), like the service builds it."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return inputs.columns_to_frame(inputs.arrow_to_columns(table, bundle.schema))


def batch_predict(api: Api, model_id: str, bundle, frame: pd.DataFrame, rounds: int) -> dict:
    """Rows in one request through the service, per input format, against in-process predict."""
    local = []
    features = model_input(frame, bundle)
    for _ in range(rounds):
        started = time.perf_counter()
        expected = bundle.pipeline.predict(features)
        local.append(time.perf_counter() - started)
    want = list(np.asarray(bundle.classes, dtype=object)[expected])
    in_process = len(frame) / statistics.median(local)
    formats = {}
    for name, (body, content_type, accept) in batch_bodies(frame).items():
        service = []
        for _ in range(rounds):
            started = time.perf_counter()
            response = api.call(
                "POST",
                f"/resource/models/{model_id}/predict",
                data=body,
                headers={"Content-Type": content_type, "Accept": accept},
            )
            service.append(time.perf_counter() - started)
        formats[name] = {
            "body_mb": len(body) / 1e6,
            "service_rows_s": len(frame) / statistics.median(service),
            "engine": response.headers.get("X-Model-Engine"),
            "same_predictions": _predictions(response) == want,
        }
    return {"rows": len(frame), "in_process_rows_s": in_process, "formats": formats}


def process_tree(pid: int) -> list[int]:
    """A process and its children (a Celery worker and its pool)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


class PeakRss:
    """Samples processes' RSS every 20 ms in a thread; the largest growth of any of them."""

    def __init__(self, pids: list[int]) -> None:
        self.baseline = {pid: rss_mb(pid) for pid in pids}
        self.peak = dict(self.baseline)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample)

    def _sample(self) -> None:
        while not self._done.is_set():
            for pid in self.peak:
                self.peak[pid] = max(self.peak[pid], rss_mb(pid))
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return max(self.peak[pid] - self.baseline[pid] for pid in self.peak)


def upload_file(api: Api, path: Path, content_type: str) -> dict:
    """``curl -T`` a file as a raw body; the data set record once its profile is ready."""
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            "-T",
            str(path),
            "-H",
            f"Content-Type: {content_type}",
            "-H",
            f"Authorization: Bearer {api.token}",
            f"{api.url}/resource/datasets?name={path.name}",
        ],
        capture_output=True,
        text=True,
    )
    record = json.loads(result.stdout)
    if "id" not in record:
        raise RuntimeError(f"upload failed: {result.stdout[:300]} {result.stderr[:300]}")
    return record


def wait_dataset(api: Api, dataset_id: str) -> dict:
    while True:
        record = api.call("GET", f"/resource/datasets/{dataset_id}").json()
        if record.get("status", "ready") == "ready":
            return record
        if record["status"] == "failed":
            raise RuntimeError(f"profile failed: {record.get('error')}")
        time.sleep(0.2)


def wait_task(api: Api, status_url: str) -> dict:
    while True:
        status = api.call("GET", status_url).json()
        if status["done"]:
            if status["state"] != "SUCCESS":
                raise RuntimeError(f"task failed: {status}")
            return status
        time.sleep(0.1)


def scoring_job(api: Api, stack: Stack, work: Path, model_id: str, bundle, rows: int) -> dict:
    """Score a stored data set of ``rows`` rows with a Celery job, against in-process predict."""
    print(f"bench: scoring a stored data set of {rows} rows", file=sys.stderr)
    frame = synthetic_table(rows, seed=2)
    path = work / "score.parquet"
    frame.to_parquet(path, index=False)
    dataset = wait_dataset(api, upload_file(api, path, "application/vnd.apache.parquet")["id"])
    features = model_input(frame.drop(columns=[TARGET]), bundle)
    started = time.perf_counter()
    expected = bundle.pipeline.predict(features)
    in_process = time.perf_counter() - started
    with (
        PeakRss(stack.api_worker_pids()) as api_rss,
        PeakRss(process_tree(stack.processes["worker"].pid)) as worker_rss,
    ):
        started = time.perf_counter()
        accepted = api.call(
            "POST",
            f"/resource/models/{model_id}/predictions",
            expect=202,
            json={"dataset_id": dataset["id"], "format": "parquet"},
        ).json()
        status = wait_task(api, accepted["status_url"])
        seconds = time.perf_counter() - started
    result_id = status["result"]["dataset_id"]
    scored = pq.read_table(
        pa.BufferReader(api.call("GET", f"/resource/datasets/{result_id}/download").content)
    )
    want = np.asarray(bundle.classes, dtype=object)[expected]
    same = scored.column("prediction").to_pylist() == list(want)
    for dataset_id in (dataset["id"], result_id):
        api.call("DELETE", f"/resource/datasets/{dataset_id}", expect=204)
    path.unlink()
    return {
        "rows": rows,
        "seconds": seconds,
        "service_rows_s": rows / seconds,
        "in_process_rows_s": rows / in_process,
        "api_rss_growth_mb": api_rss.growth_mb,
        "worker_rss_growth_mb": worker_rss.growth_mb,
        "same_predictions": same,
    }


def plain_training(csv_path: Path, estimator: str, params: dict) -> float:
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH / "plain_fit.py"),
            str(csv_path),
            TARGET,
            estimator,
            json.dumps(params),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)["seconds"]


def single_row(
    args: argparse.Namespace,
    api: Api,
    service: Stack,
    floors: dict[str, Stack],
    model_id: str,
    bundle,
    probes: list[dict],
    work: Path,
) -> dict:
    """Single-row predict (wrk) on the service, the floors and each peer serving this pipeline.

    The peers start first and must answer every probe row as the service does (a
    peer that answers errors or other classes measures nothing). Then the
    contenders alternate (A B C ... A B C ...) so that machine drift hits all
    alike; each keeps its best round (highest req/s) and the errors of all rounds.
    """
    work.mkdir(parents=True)
    pipeline = work / "pipeline.joblib"
    joblib.dump(bundle.pipeline, pipeline)
    row = probes[0]
    auth = {"Content-Type": "application/json", "Authorization": f"Bearer {api.token}"}
    predict = f"{service.url}/resource/models/{model_id}/predict"
    by_alias = register(api, service, f"bench-{work.name}", model_id)
    v2_infer = f"{service.url}/v2/models/{model_id}/infer"
    logged = f"{service.url}/resource/models/{logged_copy(api, model_id)}/predict"
    contenders = {
        "service": (predict, json.dumps(row), auth),
        "service_logged": (logged, json.dumps(row), auth),
        "service_alias": (by_alias, json.dumps(row), auth),
        "service_v2": (v2_infer, json.dumps(v2_request(row, bundle)), auth),
    }
    contenders |= {
        name: (f"{floor.url}/resource/predict", json.dumps(row), auth)
        for name, floor in floors.items()
    }
    running: list[peers.Peer] = []
    try:
        want = [
            api.call("POST", f"/resource/models/{model_id}/predict", json=probe).json()[
                "predictions"
            ][0]
            for probe in probes
        ]
        v2_labels = [
            api.call("POST", f"/v2/models/{model_id}/infer", json=v2_request(probe, bundle)).json()[
                "outputs"
            ][0]["data"][0]
            for probe in probes
        ]
        if v2_labels != want:
            raise RuntimeError(f"V2 infer predicts {v2_labels} for the probe rows, /predict {want}")
        classes = np.asarray(bundle.classes, dtype=object)
        for name in args.peers:
            print(f"bench: starting {peers.TITLES[name]}", file=sys.stderr)
            peer = peers.start(name, args.python[peers.ENVIRONMENTS[name]], pipeline, work)
            running.append(peer)
            got = []
            for probe in probes:
                answer = requests.post(
                    peer.url, data=peer.body(probe), headers=JSON_TYPE, timeout=30
                )
                if answer.status_code != 200:
                    raise RuntimeError(
                        f"{peers.TITLES[name]} answered {answer.status_code}: "
                        f"{answer.text[:300]}; the end of its log:\n{peer.log_tail()}"
                    )
                got.append(classes[peer.prediction(answer.json())])
            if got != want:
                raise RuntimeError(
                    f"{peers.TITLES[name]} predicts {got} for the probe rows, the service "
                    f"{want}: it does not serve the same pipeline, or reads the rows otherwise"
                )
            contenders[name] = (peer.url, peer.body(row), JSON_TYPE)
        for name, (url, body, headers) in contenders.items():
            check = requests.post(url, data=body, headers=headers, timeout=30)
            if check.status_code != 200:
                raise RuntimeError(f"{name} answered {check.status_code}: {check.text[:200]}")
            wrk(url, body, headers, 2, work)  # warm-up, not counted
        runs: dict[str, list[dict]] = {name: [] for name in contenders}
        for round_number in range(args.rounds):
            for name, (url, body, headers) in contenders.items():
                runs[name].append(wrk(url, body, headers, args.seconds, work))
            print(f"bench: single-row round {round_number + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        for peer in running:
            peer.stop()
    measured = {}
    for name, rounds in runs.items():
        best = max(rounds, key=lambda r: r["rps"])
        measured[name] = {
            "rps": best["rps"],
            "p50_ms": best["p50_ms"],
            "p99_ms": best["p99_ms"],
            "errors": sum(r["errors"] for r in rounds),
            "rounds": rounds,
        }
    measured["probe"] = {"rows": len(probes), "classes": dict(Counter(want))}
    return measured


def logged_copy(api: Api, model_id: str) -> str:
    """The same bundle uploaded again as a model of its own, its prediction log on: the
    log's cost is measured beside the model without it (docs/monitoring.md)."""
    bundle = api.call("GET", f"/resource/models/{model_id}/download").content
    files = {"file": ("model.mlbundle", bundle, "application/octet-stream")}
    copy = api.call("POST", "/resource/models/upload", expect=201, files=files).json()["id"]
    api.call("PATCH", f"/resource/models/{copy}", json={"log_predictions": True})
    return copy


def v2_request(row: dict, bundle) -> dict:
    """One row as an Open Inference Protocol request: one input per column (MLServer's pd)."""
    return {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {
                "name": column["name"],
                "shape": [1],
                "datatype": "FP64" if column["type"] == "number" else "BYTES",
                "data": [row[column["name"]]],
            }
            for column in bundle.schema
        ],
    }


def wait_search(api: Api, location: str) -> dict:
    while True:
        record = api.call("GET", location).json()
        if record["status"] in ("done", "failed", "cancelled"):
            if record["status"] != "done":
                raise RuntimeError(f"search {record['status']}: {record.get('error')}")
            return record
        time.sleep(0.2)


def restart_worker(service: Stack, processes: int) -> None:
    """The stack's worker again, with ``processes`` pool processes, once it answers."""
    service.stop_worker()
    service.celery_concurrency = processes
    service.start_worker()
    deadline = time.monotonic() + 120
    while not _ok(f"{service.url}/readyz"):
        if time.monotonic() > deadline:
            raise RuntimeError("the worker did not come back")
        time.sleep(0.5)


def search_throughput(api: Api, service: Stack, dataset_id: str) -> dict:
    """The same random search with 1, then 2 worker processes: trials per minute, from the
    search's start to its last trial's end (the refit of the best is not counted)."""
    body = {
        "dataset_id": dataset_id,
        "target": TARGET,
        "estimator": "RandomForestClassifier",
        "space": {
            "n_estimators": {"type": "int", "low": 20, "high": 60},
            "max_depth": [6, 12, None],
        },
        "strategy": "random",
        "max_trials": SEARCH_TRIALS,
        "cv": 3,
        "random_state": 0,
    }
    results: dict = {"trials": SEARCH_TRIALS}
    boards = []
    for processes in (1, 2):
        restart_worker(service, processes)
        location = api.call("POST", "/resource/searches", expect=202, json=body).headers["Location"]
        record = wait_search(api, location)
        seconds = record["trials_ended_at"] - record["started_at"]
        results[f"{processes}_process"] = {
            "seconds": round(seconds, 2),
            "trials_per_minute": round(record["trials"]["done"] / seconds * 60, 1),
            "workers": len({trial["worker"] for trial in record["leaderboard"]}),
        }
        boards.append([(t["params"], t["cv_scores"]) for t in record["leaderboard"]])
        print(f"bench: search with {processes} worker process(es) done", file=sys.stderr)
    restart_worker(service, 2)
    results["same_leaderboard"] = boards[0] == boards[1]
    return results


def register(api: Api, service: Stack, name: str, model_id: str) -> str:
    """The model as version 1 of a registered model, aliased ``production``; its predict URL."""
    api.call("POST", "/resource/registry", expect=201, json={"name": name})
    api.call("POST", f"/resource/registry/{name}/versions", expect=201, json={"model_id": model_id})
    api.call("PUT", f"/resource/registry/{name}/aliases/production", json={"version": 1})
    return f"{service.url}/resource/registry/{name}@production/predict"


def train(
    api: Api, dataset_id: str, csv_path: Path, secret: str, timed: bool, rounds: int
) -> tuple[dict, dict]:
    """Train each model through the service (``rounds`` times against the plain script when
    ``timed``); the served (model id, bundle) and the training results per model."""
    served, results = {}, {}
    for label, (estimator, params) in MODELS.items():
        plain, ready, compiled = [], [], []
        for _ in range(rounds if timed else 1):  # A B A B
            if timed:
                plain.append(plain_training(csv_path, estimator, params))
            started = time.perf_counter()
            accepted = api.call(
                "POST",
                "/resource/models",
                expect=202,
                json={
                    "dataset_id": dataset_id,
                    "target": TARGET,
                    "estimator": estimator,
                    "params": params,
                    "name": label,
                },
            ).json()
            seconds_ready, seconds_compiled, record = wait_model(api, accepted["model_id"], started)
            ready.append(seconds_ready)
            compiled.append(seconds_compiled)
        bundle = bundles.loads(
            api.call("GET", f"/resource/models/{record['id']}/download").content, secret
        )
        served[label] = (record["id"], bundle)
        results[label] = {"engine": record["engine"]}
        if timed:
            results[label]["training"] = {
                "plain_script_s": statistics.median(plain),
                "service_ready_s": statistics.median(ready),
                "service_compiled_s": statistics.median(compiled),
            }
        print(f"bench: trained {label}: {record['engine']['name']}", file=sys.stderr)
    return served, results


# --- the run -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="mlservice-bench-"))
    password = secrets.token_urlsafe(16)
    service = start_service(work / "service", password)
    floors: dict[str, Stack] = {}
    try:
        api = Api(service.url, "bench", password)
        settings = load_settings(service.env())
        store = redis_client.connect(settings.redis)
        secret = security.service_secret(store, settings.security.secret_key)
        table = synthetic_table(args.rows)
        csv_path = work / "table.csv"
        table.to_csv(csv_path, index=False)
        dataset = api.call(
            "POST",
            "/resource/datasets",
            expect=201,
            files={"file": ("table.csv", csv_path.read_bytes(), "text/csv")},
        ).json()
        results: dict = {
            # Other work on the machine skews every figure: the load says how much there was.
            "machine": {"cpus": os.cpu_count(), "load_at_start": os.getloadavg()},
            "rows": args.rows,
            "settings": {
                "wrk": f"-t2 -c16 -d{args.seconds}s",
                "rounds": args.rounds,
                "parts": args.only,
                "peers": {
                    name: peers.version(
                        args.python[peers.ENVIRONMENTS[name]], peers.ENVIRONMENTS[name]
                    )
                    for name in args.peers
                },
            },
            "models": {},
        }
        print(f"bench: service at {service.url}, data set {args.rows} rows", file=sys.stderr)
        served, results["models"] = train(
            api, dataset["id"], csv_path, secret, "training" in args.only, args.rounds
        )

        if "single-row" in args.only:
            floors["floor"] = start_floor(service, work / "floor")
            floors["floor_sync"] = start_floor(service, work / "floor-sync", sync_workers=2)
            probes = [
                {k: (None if v != v else v) for k, v in record.items()}
                for record in table.drop(columns=[TARGET])
                .dropna()
                .head(PROBE_ROWS)
                .to_dict("records")
            ]
            for label, (model_id, bundle) in served.items():
                results["models"][label]["single_row"] = single_row(
                    args, api, service, floors, model_id, bundle, probes, work / _slug(label)
                )
        if "batch" in args.only:
            batch = synthetic_table(args.batch_rows, seed=1).drop(columns=[TARGET])
            for label, (model_id, bundle) in served.items():
                results["models"][label]["batch"] = batch_predict(
                    api, model_id, bundle, batch, args.rounds
                )
            print("bench: batch predict done", file=sys.stderr)
        if "scoring" in args.only and args.scoring_rows:
            model_id, bundle = served["LogisticRegression"]
            results["scoring"] = scoring_job(
                api, service, work, model_id, bundle, args.scoring_rows
            )
            print("bench: scoring job done", file=sys.stderr)
        if "upload" in args.only and args.upload:
            results["upload"] = upload_gib(api, service, work, table)
            print("bench: upload done", file=sys.stderr)
        if "search" in args.only:
            results["search"] = search_throughput(api, service, dataset["id"])
        results["machine"]["load_at_end"] = os.getloadavg()
        return results
    finally:
        for floor in floors.values():
            floor.stop()
        service.stop()
        shutil.rmtree(work, ignore_errors=True)


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-")


def _ratio(measured: float, reference: float) -> str:
    return f"{measured:.0f} / {reference:.0f} = {measured / reference:.2f}x"


Row = tuple[str, str, str, bool | None]


def single_row_verdicts(label: str, single: dict) -> list[Row]:
    """The service against the better floor and against each peer; every contender's numbers.

    A peer's own row asks for 0 errors: a peer that answered errors under load
    was not measured, so the ratios against it mean nothing.
    """
    service = single["service"]
    floor = max(single["floor"], single["floor_sync"], key=lambda r: r["rps"])
    better = "sync" if floor is single["floor_sync"] else "service settings"
    by_alias = single["service_alias"]
    v2 = single["service_v2"]
    logged = single["service_logged"]
    rows: list[Row] = [
        (
            f"{label}: predict with the prediction log on / off (req/s)",
            _ratio(logged["rps"], service["rps"]),
            f">= {TARGETS['log_ratio']}x",
            logged["rps"] >= TARGETS["log_ratio"] * service["rps"],
        ),
        (
            f"{label}: log on p50 / p99, errors",
            f"{logged['p50_ms']:.2f} / {logged['p99_ms']:.2f} ms, {logged['errors']}",
            "0 errors",
            logged["errors"] == 0,
        ),
        (
            f"{label}: predict by name@alias / by model id (req/s)",
            _ratio(by_alias["rps"], service["rps"]),
            f">= {TARGETS['alias_ratio']}x",
            by_alias["rps"] >= TARGETS["alias_ratio"] * service["rps"],
        ),
        (
            f"{label}: by name@alias p50 / p99, errors",
            f"{by_alias['p50_ms']:.2f} / {by_alias['p99_ms']:.2f} ms, {by_alias['errors']}",
            "0 errors",
            by_alias["errors"] == 0,
        ),
        (
            f"{label}: V2 infer (one input per column) / native JSON (req/s)",
            _ratio(v2["rps"], service["rps"]),
            f">= {TARGETS['v2_ratio']}x",
            v2["rps"] >= TARGETS["v2_ratio"] * service["rps"],
        ),
        (
            f"{label}: V2 infer p50 / p99, errors",
            f"{v2['p50_ms']:.2f} / {v2['p99_ms']:.2f} ms, {v2['errors']}",
            "0 errors",
            v2["errors"] == 0,
        ),
        (
            f"{label}: service / better floor ({better}) (req/s)",
            _ratio(service["rps"], floor["rps"]),
            f">= {TARGETS['floor_ratio']}x",
            service["rps"] >= TARGETS["floor_ratio"] * floor["rps"],
        ),
        (
            f"{label}: service p50 / p99, errors",
            f"{service['p50_ms']:.2f} / {service['p99_ms']:.2f} ms, {service['errors']}",
            f"p99 <= {TARGETS['p99_ratio'] * floor['p99_ms']:.1f} ms, 0 errors",
            service["p99_ms"] <= TARGETS["p99_ratio"] * floor["p99_ms"] and service["errors"] == 0,
        ),
    ]
    measured = [name for name in peers.PEERS if name in single]
    if measured:
        fastest = max(measured, key=lambda name: single[name]["rps"])
        rows.append(
            (
                f"{label}: service / fastest peer ({peers.TITLES[fastest]}) (req/s)",
                _ratio(service["rps"], single[fastest]["rps"]),
                f">= {TARGETS['peer_ratio']}x",
                service["rps"] >= TARGETS["peer_ratio"] * single[fastest]["rps"],
            )
        )
    for name in measured:
        other, title = single[name], peers.TITLES[name]
        target = TARGETS["mlflow_ratio"] if name == "mlflow" else None
        rows += [
            (
                f"{label}: service / {title} (req/s)",
                _ratio(service["rps"], other["rps"]),
                f">= {target}x" if target else "",
                service["rps"] >= target * other["rps"] if target else None,
            ),
            (
                f"{label}: service p99 / {title} p99 (ms)",
                f"{service['p99_ms']:.1f} / {other['p99_ms']:.1f}",
                "lower",
                service["p99_ms"] < other["p99_ms"],
            ),
        ]
    titles = {"floor": "floor, service settings", "floor_sync": "floor, 2 sync workers"}
    for name in ("floor", "floor_sync", *measured):
        other = single[name]
        peer = name in peers.TITLES
        rows.append(
            (
                f"{label}: {titles.get(name) or peers.TITLES[name]}: req/s, p50 / p99, errors",
                f"{other['rps']:.0f}, {other['p50_ms']:.2f} / {other['p99_ms']:.2f} ms, "
                f"{other['errors']}",
                "0 errors" if peer else "",
                other["errors"] == 0 if peer else None,
            )
        )
    return rows


def verdicts(results: dict) -> list[Row]:
    """(what, measured, target, met) rows for the table."""
    rows: list[Row] = []
    for label, model in results["models"].items():
        if "single_row" in model:
            rows += single_row_verdicts(label, model["single_row"])
        batch = model.get("batch", {"formats": {}})
        for name, measured in batch["formats"].items():
            binary = name in ("Arrow IPC", "Parquet")
            target = TARGETS["batch_binary_ratio" if binary else "batch_json_ratio"]
            rows.append(
                (
                    f"{label}: batch {batch['rows']} rows {name}, service / in-process (rows/s)",
                    _ratio(measured["service_rows_s"], batch["in_process_rows_s"]),
                    f">= {target}x",
                    measured["service_rows_s"] >= target * batch["in_process_rows_s"]
                    and measured["same_predictions"],
                )
            )
        if "training" in model:
            train = model["training"]
            limit = TARGETS["train_ratio"] * train["plain_script_s"] + TARGETS["train_slack_s"]
            rows.append(
                (
                    f"{label}: training to ready / plain script (s)",
                    f"{train['service_ready_s']:.2f} / {train['plain_script_s']:.2f} "
                    f"(compiled at {train['service_compiled_s']:.2f})",
                    f"<= {limit:.2f}",
                    train["service_ready_s"] <= limit,
                )
            )
    if "scoring" in results:
        scoring = results["scoring"]
        rows += [
            (
                f"scoring job, {scoring['rows']} stored rows, service / in-process (rows/s)",
                _ratio(scoring["service_rows_s"], scoring["in_process_rows_s"]),
                f">= {TARGETS['scoring_ratio']}x",
                scoring["service_rows_s"] >= TARGETS["scoring_ratio"] * scoring["in_process_rows_s"]
                and scoring["same_predictions"],
            ),
            (
                "scoring job: API / worker peak RSS growth (MB)",
                f"{scoring['api_rss_growth_mb']:.1f} / {scoring['worker_rss_growth_mb']:.1f}",
                f"<= {TARGETS['scoring_rss_mb']:.0f} each",
                max(scoring["api_rss_growth_mb"], scoring["worker_rss_growth_mb"])
                <= TARGETS["scoring_rss_mb"],
            ),
        ]
    if "search" in results:
        search = results["search"]
        one, two = search["1_process"], search["2_process"]
        speedup = two["trials_per_minute"] / one["trials_per_minute"]
        rows.append(
            (
                f"search of {search['trials']} trials: trials per minute, 2 / 1 worker processes",
                f"{two['trials_per_minute']:.0f} / {one['trials_per_minute']:.0f} = "
                f"{speedup:.2f}x (same leaderboard: {search['same_leaderboard']})",
                f">= {TARGETS['search_speedup']}x",
                speedup >= TARGETS["search_speedup"] and search["same_leaderboard"],
            )
        )
    if "upload" in results:
        upload = results["upload"]
        rows += [
            (
                f"1 GiB CSV upload (MB/s; answered {upload['status_at_answer']}, "
                f"profile ready at {upload['ready_after_s']:.1f} s)",
                f"{upload['mb_per_s']:.0f}",
                f">= {TARGETS['upload_mb_s']:.0f}",
                upload["mb_per_s"] >= TARGETS["upload_mb_s"],
            ),
            (
                "1 GiB upload: API worker peak RSS growth (MB)",
                f"{upload['rss_growth_mb']:.1f}",
                f"<= {TARGETS['upload_rss_mb']:.0f}",
                upload["rss_growth_mb"] <= TARGETS["upload_rss_mb"],
            ),
        ]
    return rows


def print_table(rows: list[Row]) -> None:
    header: Row = ("measure", "measured", "target", None)
    what, value, target = (max(len(r[i]) for r in [header, *rows]) for i in range(3))
    for measure, measured, aim, met in [header, *rows]:
        mark = "met" if measure == "measure" else "" if met is None else "yes" if met else "NO"
        print(f"{measure:<{what}}  {measured:<{value}}  {aim:<{target}}  {mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for environment, venv in VENVS.items():
        parser.add_argument(
            f"--{environment}-python",
            dest=environment,
            type=Path,
            default=REPO / venv / "bin" / "python",
            help=f"the Python of {venv} (make bench builds it), for {environment}",
        )
    parser.add_argument("--out", type=Path, default=REPO / "var" / "bench" / "results.json")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
        help="run only these parts (default: all); the models are trained in any case",
    )
    parser.add_argument(
        "--peers",
        nargs="*",
        choices=peers.PEERS,
        default=list(peers.PEERS),
        help="the peers in the single-row part (default: all)",
    )
    parser.add_argument(
        "--skip-peers", action="store_true", help="no peer: the service and the floors only"
    )
    parser.add_argument("--rows", type=int, default=20_000, help="training table rows")
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument(
        "--scoring-rows", type=int, default=1_000_000, help="stored data set scored (0: skip)"
    )
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration per run")
    parser.add_argument("--rounds", type=int, default=2, help="A B C rounds per contender")
    parser.add_argument("--no-upload", dest="upload", action="store_false")
    args = parser.parse_args()
    if args.skip_peers or "single-row" not in args.only:
        args.peers = []
    args.python = {environment: str(getattr(args, environment).absolute()) for environment in VENVS}
    for name in args.peers:
        environment = peers.ENVIRONMENTS[name]
        if not Path(args.python[environment]).exists():
            parser.error(
                f"{peers.TITLES[name]} needs {args.python[environment]}: run make bench "
                f"(it builds {VENVS[environment]}), pass --{environment}-python, "
                "or leave the peer out (--peers, --skip-peers)"
            )
    results = run(args)
    rows = verdicts(results)
    results["table"] = [
        {"measure": r[0], "measured": r[1], "target": r[2], "met": r[3]} for r in rows
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print_table(rows)
    print(f"\n(JSON: {args.out})")


if __name__ == "__main__":
    main()
