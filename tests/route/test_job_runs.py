"""Scoring and profiling jobs' runs in Redis: a start counted and kept, a dead run swept once
and sent again as it was, an outcome that outlives the run (store/job_runs.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from mlservice.redis_client import key
from mlservice.store import leases
from mlservice.store.job_runs import JobRuns, JobTask, Outcome
from mlservice.store.leases import LeaseHolder


def dead_holder() -> str:
    """A lease holder that is a process of this host which has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return json.dumps({"host": leases._this_host(), "pid": process.pid, "run": "x", "at": 0})


def test_a_dead_run_is_swept_once_and_sent_again_with_its_task(ctx):
    runs = JobRuns(ctx.redis, "scoring", max_deliveries=2)
    job_id = uuid.uuid4().hex
    task = JobTask("mlservice.tasks.score_dataset", ["m", job_id, {}, {}], "t-1", "req-1")
    run = runs.begin(job_id, task)
    assert isinstance(run, LeaseHolder) and run.delivery == 1
    assert runs.over_limit(run) is None
    # Its process dies holding the lease.
    ctx.redis.set(key("scoring", job_id, "lease"), dead_holder(), px=30_000)
    sent: list[JobTask] = []
    removed: list[str] = []
    assert runs.sweep(sent.append, removed.append) == [job_id]
    assert sent == [task] and removed == [job_id]
    assert runs.sweep(sent.append, removed.append) == []  # claimed once

    again = runs.begin(job_id, task)
    assert again is not None and again.delivery == 2
    ctx.redis.delete(key("scoring", job_id, "lease"))  # that run died too
    third = runs.begin(job_id, task)
    assert third is not None and third.delivery == 3
    reason = runs.over_limit(third)
    assert reason == (
        "scoring was started 2 times and its worker stopped each time before it finished "
        "(killed, out of memory, or shut down); [service] max_job_deliveries = 2 allows no more"
    )
    runs.settle(job_id, Outcome("failed", reason))
    assert runs.outcome(job_id) == Outcome("failed", reason)
    assert runs.task(job_id) is None
    assert job_id not in runs.leases.running()
    assert runs.sweep(sent.append, removed.append) == []  # settled: never sent again
    assert 0 < ctx.redis.ttl(key("scoring", job_id, "deliveries")) <= 7 * 24 * 3600
