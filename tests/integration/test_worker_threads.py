"""Each Celery pool process gets its share of the cores for native threads, not all of them.

HistGradientBoosting (OpenMP) and BLAS start a thread per core in every process
that uses them; two pool processes on two cores then ran four spinning threads,
and a fit that takes 0.2 s alone took seconds in the worker. The worker limits
each pool process to cores / processes threads (``mlservice.worker_threads``).
"""

from __future__ import annotations

import json

from mlservice import worker_threads
from tests.helpers import eventually, train, upload, wait_ready


def test_each_pool_process_is_limited_to_its_share_of_the_cores(stack):
    expected = worker_threads.per_process(worker_threads.available_cores(), 2)

    def limited() -> list[dict]:
        lines = (stack.logs / "worker.log").read_text(errors="replace").splitlines()
        found = [json.loads(line) for line in lines if "native thread" in line]
        return found if len(found) >= stack.celery_concurrency else []

    found = eventually(limited, timeout=60, message="no pool process said its thread limit")
    for line in found:
        assert f"limited to {expected} native thread" in line["message"], line


def test_hist_gradient_boosting_trains_in_the_worker(client, admin_token, customers):
    dataset_id = upload(client, admin_token, customers)
    seconds = []
    for seed in range(3):
        body = {
            "dataset_id": dataset_id,
            "target": "plan",
            "estimator": "HistGradientBoostingClassifier",
            "params": {"random_state": seed},
            "compile": False,
        }
        record = wait_ready(client, admin_token, train(client, admin_token, body)["model_id"])
        assert record["status"] == "ready", record
        seconds.append(record["training_seconds"])
    print(f"HistGradientBoostingClassifier in the worker: {seconds} s")
