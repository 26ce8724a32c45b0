"""``make bench``: the service against MLflow serving, the HTTP floor and plain scripts.

Starts the real stack (redis-server, Celery, Gunicorn with its defaults,
NGINX) on free loopback ports, then measures in one run on this machine:

* single-row predict through NGINX at concurrency 16 (wrk): this service,
  ``mlflow models serve`` of the same fitted pipeline, and a constant-answer
  Flask endpoint behind the same NGINX (the floor) twice: on the service's
  Gunicorn settings and on 2 sync workers; for LogisticRegression and
  RandomForest(100), alternating the contenders (A B C D A B C D) so that
  machine drift hits all alike;
* a 100k-row batch predict through the service in JSON records, MLflow's
  ``dataframe_split``, columnar JSON, Arrow IPC and Parquet, against
  in-process inference;
* a scoring job over a 1M-row stored data set (rows/s against in-process
  inference, and the API's and the Celery worker's peak RSS growth);
* a 1 GiB CSV upload (MB/s, and the API workers' peak RSS growth);
* training wall time (request to ``ready``) against a plain script.

Prints one table and writes it as JSON (``--out``). MLflow runs from its own
environment (``--mlflow-python``), never the service's.
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
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
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
MODELS = {
    "LogisticRegression": ("LogisticRegression", {"max_iter": 1000}),
    "RandomForest(100)": ("RandomForestClassifier", {"n_estimators": 100, "random_state": 0}),
}
TARGETS = {
    "floor_ratio": 0.6,  # of the better of the two floors
    "mlflow_ratio": 10.0,
    "p99_ratio": 2.0,  # of that floor's p99
    "batch_binary_ratio": 0.8,  # Arrow, Parquet
    "batch_json_ratio": 0.4,  # every JSON shape
    "scoring_ratio": 0.7,
    "scoring_rss_mb": 256.0,
    "upload_mb_s": 200.0,
    "upload_rss_mb": 64.0,
    "train_ratio": 1.15,
    "train_slack_s": 0.5,
}


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
        extra_env=service.extra_env | {"PYTHONPATH": str(BENCH)},
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    floor.logs.mkdir(exist_ok=True)
    argv = [sys.executable, "-m", "gunicorn", "-c", str(SRC_DIR / "gunicorn.conf.py")]
    if sync_workers:
        argv += ["-k", "sync", "-w", str(sync_workers)]
    floor._spawn("api", [*argv, "floor:app"])
    floor._wait("api", lambda: _ok(f"http://127.0.0.1:{floor.api_port}/healthz"), 60)
    floor.start_nginx()
    return floor


def start_mlflow(
    mlflow_python: str, pipeline, work: Path, name: str
) -> tuple[subprocess.Popen, str]:
    """``mlflow models serve -w 2`` of the same fitted pipeline, from the bench environment."""
    pickled = work / f"{name}.joblib"
    joblib.dump(pipeline, pickled)
    model_dir = work / f"mlflow-{name}"
    subprocess.run(
        [mlflow_python, str(BENCH / "mlflow_save.py"), str(pickled), str(model_dir)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port = free_port()
    mlflow = str(Path(mlflow_python).parent / "mlflow")
    log = open(work / f"mlflow-{name}.log", "wb")
    # mlflow starts uvicorn from PATH: the bench environment's.
    env = os.environ | {"PATH": f"{Path(mlflow_python).parent}{os.pathsep}{os.environ['PATH']}"}
    process = subprocess.Popen(
        [
            mlflow,
            "models",
            "serve",
            "-m",
            str(model_dir),
            "-w",
            "2",
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "--env-manager",
            "local",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while not _ok(f"{url}/ping"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"mlflow serve did not start; see {work}/mlflow-{name}.log")
        time.sleep(0.5)
    return process, url


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


# --- the run -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="mlservice-bench-"))
    password = secrets.token_urlsafe(16)
    service = start_service(work / "service", password)
    floor = floor_sync = None
    mlflow_processes: list[subprocess.Popen] = []
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
            "machine": {"cpus": os.cpu_count()},
            "rows": args.rows,
            "settings": {"wrk": f"-t2 -c16 -d{args.seconds}s", "rounds": args.rounds},
            "models": {},
        }
        print(f"bench: service at {service.url}, data set {args.rows} rows", file=sys.stderr)

        served = {}
        for label, (estimator, params) in MODELS.items():
            plain, ready, compiled = [], [], []
            for _ in range(args.rounds):  # A B A B
                plain.append(plain_training(csv_path, estimator, params))
                started = time.perf_counter()
                accepted = api.call(
                    "POST",
                    "/resource/models",
                    expect=202,
                    json={
                        "dataset_id": dataset["id"],
                        "target": TARGET,
                        "estimator": estimator,
                        "params": params,
                        "name": label,
                    },
                ).json()
                seconds_ready, seconds_compiled, record = wait_model(
                    api, accepted["model_id"], started
                )
                ready.append(seconds_ready)
                compiled.append(seconds_compiled)
            bundle = bundles.loads(
                api.call("GET", f"/resource/models/{record['id']}/download").content, secret
            )
            served[label] = (record["id"], bundle)
            results["models"][label] = {
                "engine": record["engine"],
                "training": {
                    "plain_script_s": statistics.median(plain),
                    "service_ready_s": statistics.median(ready),
                    "service_compiled_s": statistics.median(compiled),
                },
            }
            print(f"bench: trained {label}: {record['engine']['name']}", file=sys.stderr)

        floor = start_floor(service, work / "floor")
        floor_sync = start_floor(service, work / "floor-sync", sync_workers=2)
        row = {
            k: (None if v != v else v)
            for k, v in table.drop(columns=[TARGET]).dropna().iloc[0].to_dict().items()
        }
        contenders = {}
        for label, (model_id, bundle) in served.items():
            process, url = start_mlflow(
                args.mlflow_python, bundle.pipeline, work, label.split("(")[0]
            )
            mlflow_processes.append(process)
            auth = {"Content-Type": "application/json", "Authorization": f"Bearer {api.token}"}
            contenders[label] = {
                "service": (
                    f"{service.url}/resource/models/{model_id}/predict",
                    json.dumps(row),
                    auth,
                ),
                "mlflow": (
                    f"{url}/invocations",
                    json.dumps({"dataframe_records": [row]}),
                    {"Content-Type": "application/json"},
                ),
                "floor": (f"{floor.url}/resource/predict", json.dumps(row), auth),
                "floor_sync": (f"{floor_sync.url}/resource/predict", json.dumps(row), auth),
            }
            for name, (target_url, body, headers) in contenders[label].items():
                check = requests.post(target_url, data=body, headers=headers, timeout=30)
                if check.status_code != 200:
                    raise RuntimeError(f"{name} answered {check.status_code}: {check.text[:200]}")
                wrk(target_url, body, headers, 2, work)  # warm-up, not counted

        runs: dict = {
            label: {name: [] for name in ("service", "mlflow", "floor", "floor_sync")}
            for label in served
        }
        for round_number in range(args.rounds):
            for label in served:
                for name, (target_url, body, headers) in contenders[label].items():
                    runs[label][name].append(wrk(target_url, body, headers, args.seconds, work))
            print(f"bench: single-row round {round_number + 1}/{args.rounds} done", file=sys.stderr)
        for label, by_name in runs.items():
            results["models"][label]["single_row"] = {
                name: {
                    "rps": statistics.median(r["rps"] for r in rounds),
                    "p50_ms": statistics.median(r["p50_ms"] for r in rounds),
                    "p99_ms": max(r["p99_ms"] for r in rounds),
                    "errors": sum(r["errors"] for r in rounds),
                    "rounds": rounds,
                }
                for name, rounds in by_name.items()
            }

        batch = synthetic_table(args.batch_rows, seed=1).drop(columns=[TARGET])
        for label, (model_id, bundle) in served.items():
            results["models"][label]["batch"] = batch_predict(
                api, model_id, bundle, batch, args.rounds
            )
        print("bench: batch predict done", file=sys.stderr)
        if args.scoring_rows:
            model_id, bundle = served["LogisticRegression"]
            results["scoring"] = scoring_job(
                api, service, work, model_id, bundle, args.scoring_rows
            )
            print("bench: scoring job done", file=sys.stderr)
        if args.upload:
            results["upload"] = upload_gib(api, service, work, table)
            print("bench: upload done", file=sys.stderr)
        return results
    finally:
        for process in mlflow_processes:
            try:
                os.killpg(process.pid, 15)
            except ProcessLookupError:
                pass
        for started_floor in (floor, floor_sync):
            if started_floor is not None:
                started_floor.stop()
        service.stop()
        shutil.rmtree(work, ignore_errors=True)


def _ratio(measured: float, reference: float) -> str:
    return f"{measured:.0f} / {reference:.0f} = {measured / reference:.2f}x"


def verdicts(results: dict) -> list[tuple[str, str, str, bool | None]]:
    """(what, measured, target, met) rows for the table."""
    rows: list[tuple[str, str, str, bool | None]] = []
    for label, model in results["models"].items():
        single = model["single_row"]
        service, mlflow = single["service"], single["mlflow"]
        floor = max(single["floor"], single["floor_sync"], key=lambda r: r["rps"])
        better = "sync" if floor is single["floor_sync"] else "service settings"
        rows += [
            (
                f"{label}: service / better floor ({better}) (req/s)",
                _ratio(service["rps"], floor["rps"]),
                f">= {TARGETS['floor_ratio']}x",
                service["rps"] >= TARGETS["floor_ratio"] * floor["rps"],
            ),
            (
                f"{label}: service / MLflow serve (req/s)",
                _ratio(service["rps"], mlflow["rps"]),
                f">= {TARGETS['mlflow_ratio']}x",
                service["rps"] >= TARGETS["mlflow_ratio"] * mlflow["rps"],
            ),
            (
                f"{label}: service p50 / p99, errors",
                f"{service['p50_ms']:.2f} / {service['p99_ms']:.2f} ms, {service['errors']}",
                f"p99 <= {TARGETS['p99_ratio'] * floor['p99_ms']:.1f} ms, 0 errors",
                service["p99_ms"] <= TARGETS["p99_ratio"] * floor["p99_ms"]
                and service["errors"] == 0,
            ),
        ]
        for name, title in (
            ("mlflow", "MLflow"),
            ("floor", "floor, service settings"),
            ("floor_sync", "floor, 2 sync workers"),
        ):
            other = single[name]
            rows.append(
                (
                    f"{label}: {title}: req/s, p50 / p99, errors",
                    f"{other['rps']:.0f}, {other['p50_ms']:.2f} / {other['p99_ms']:.2f} ms, "
                    f"{other['errors']}",
                    "",
                    None,
                )
            )
        batch = model["batch"]
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


def print_table(rows: list[tuple[str, str, str, bool | None]]) -> None:
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"{'measure':<{width}}  {'measured':<{value_width}}  {'target':<22}  met")
    for what, measured, target, met in rows:
        mark = "" if met is None else ("yes" if met else "NO")
        print(f"{what:<{width}}  {measured:<{value_width}}  {target:<22}  {mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mlflow-python",
        required=True,
        help="the Python of the benchmark environment (with MLflow)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "var" / "bench" / "results.json")
    parser.add_argument("--rows", type=int, default=20_000, help="training table rows")
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument(
        "--scoring-rows", type=int, default=1_000_000, help="stored data set scored (0: skip)"
    )
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration per run")
    parser.add_argument("--rounds", type=int, default=2, help="A B C rounds per contender")
    parser.add_argument("--no-upload", dest="upload", action="store_false")
    args = parser.parse_args()
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
