"""Which Gunicorn worker class, worker and thread counts serve single-row predictions fastest.

Starts the service once (its own Redis, Celery and NGINX), trains the two
benchmark models, then restarts only Gunicorn with each setting of the
matrix and measures single-row predict through NGINX with wrk (-t2 -c16),
in rounds (A B C ... A B C ...) so that drift hits every setting alike.
Prints req/s and p99 per setting. Run with ``make bench BENCH=gunicorn``
or ``.venv/bin/python tests/bench/gunicorn_matrix.py``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench import MODELS, TARGET, Api, _ok, start_service, synthetic_table, wait_model, wrk
from mlservice.config import SRC_DIR
from mlservice.stack import Stack

#: (worker class, workers, threads); threads only matter for gthread.
MATRIX = [
    ("gthread", 5, 4),  # the defaults before this measurement: 2 x CPUs + 1 workers, 4 threads
    ("gthread", 3, 4),
    ("gthread", 2, 4),
    ("gthread", 2, 8),
    ("gthread", 4, 2),
    ("sync", 2, 1),
    ("sync", 4, 1),
]


def restart_api(stack: Stack, worker_class: str, workers: int, threads: int) -> None:
    """Gunicorn again on the same port, with command-line flags over src/gunicorn.conf.py."""
    process = stack.processes.pop("api")
    process.terminate()
    process.wait(timeout=30)
    argv = [sys.executable, "-m", "gunicorn", "-c", str(SRC_DIR / "gunicorn.conf.py")]
    argv += ["-k", worker_class, "-w", str(workers), "--threads", str(threads)]
    stack._spawn("api", [*argv, "mlservice.app:create_app()"])
    stack._wait("api", lambda: _ok(f"http://127.0.0.1:{stack.api_port}/healthz"), 60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument(
        "--settings",
        help="instead of the matrix: class:workers:threads,... (e.g. sync:5:1,gthread:3:4)",
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("var/bench/gunicorn.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mlservice-gunicorn-"))
    password = secrets.token_urlsafe(16)
    stack = start_service(work / "service", password)
    try:
        api = Api(stack.url, "bench", password)
        table = synthetic_table(5_000)
        data = table.to_csv(index=False).encode()
        dataset = api.call(
            "POST", "/resource/datasets", expect=201, files={"file": ("t.csv", data, "text/csv")}
        ).json()
        row = {k: v for k, v in table.drop(columns=[TARGET]).dropna().iloc[0].to_dict().items()}
        urls = {}
        for label, (estimator, params) in MODELS.items():
            body = {"dataset_id": dataset["id"], "target": TARGET, "estimator": estimator}
            accepted = api.call(
                "POST", "/resource/models", expect=202, json=body | {"params": params}
            ).json()
            wait_model(api, accepted["model_id"], 0.0)
            urls[label] = f"{stack.url}/resource/models/{accepted['model_id']}/predict"
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api.token}"}
        runs: dict[str, dict[str, list[dict]]] = {}
        matrix = MATRIX
        if args.settings:
            matrix = [
                (kind, int(workers), int(threads))
                for kind, workers, threads in (item.split(":") for item in args.settings.split(","))
            ]
        for round_number in range(args.rounds):
            for setting in matrix:
                restart_api(stack, *setting)
                name = f"{setting[0]} {setting[1]}x{setting[2]}"
                for label, url in urls.items():
                    wrk(url, json.dumps(row), headers, 2, work)  # warm-up: models load
                    result = wrk(url, json.dumps(row), headers, args.seconds, work)
                    runs.setdefault(name, {}).setdefault(label, []).append(result)
                    print(
                        f"{name:<14} {label:<20} {result['rps']:>7.0f} req/s "
                        f"p99 {result['p99_ms']:.1f} ms",
                        file=sys.stderr,
                    )
            print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)
        summary = {
            name: {
                label: {
                    "rps": statistics.median(r["rps"] for r in rounds),
                    "p99_ms": max(r["p99_ms"] for r in rounds),
                    "errors": sum(r["errors"] for r in rounds),
                }
                for label, rounds in by_label.items()
            }
            for name, by_label in runs.items()
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2))
        print(f"{'setting':<14} " + "  ".join(f"{label:>30}" for label in urls))
        for name, by_label in summary.items():
            cells = [
                f"{r['rps']:>8.0f} req/s p99 {r['p99_ms']:>6.1f} ms e{r['errors']}"
                for r in by_label.values()
            ]
            print(f"{name:<14} " + "  ".join(f"{c:>30}" for c in cells))
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
