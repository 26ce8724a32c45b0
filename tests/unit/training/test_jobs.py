"""Training runs: who holds a lease, when it counts as dead, and what a capped model says."""

import configparser
import json
import os
import subprocess
import sys
import time

from mlservice.config import TEMPLATE_PATH, ServiceSettings
from mlservice.training import jobs


def holder(pid: int, host: str | None = None) -> str:
    return json.dumps({"host": host or jobs._this_host(), "pid": pid, "run": "x", "at": 0})


def test_a_live_process_of_this_host_holds_its_lease():
    assert not jobs.holder_is_dead(holder(os.getpid()))
    assert not jobs.holder_is_dead(holder(os.getppid()))


def test_a_process_that_exited_or_was_killed_holds_nothing():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert jobs.holder_is_dead(holder(process.pid))


def test_a_killed_process_not_yet_reaped_counts_as_dead():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        process.kill()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # a zombie until waited for
            with open(f"/proc/{process.pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.05)
        assert jobs.holder_is_dead(holder(process.pid))
    finally:
        process.wait()


def test_holders_on_other_hosts_or_unreadable_are_never_judged():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert not jobs.holder_is_dead(holder(process.pid, host="another-container pid:[1]"))
    assert not jobs.holder_is_dead("not json")
    assert not jobs.holder_is_dead(json.dumps({"host": jobs._this_host()}))


def test_the_lease_outlives_several_missed_heartbeats():
    assert jobs.LEASE_SECONDS >= 4 * jobs.HEARTBEAT_SECONDS


def test_a_capped_model_names_the_count_and_the_setting():
    reason = jobs.too_many_deliveries(3, 3)
    assert "started 3 times" in reason
    assert "[service] max_training_deliveries = 3" in reason


def test_max_training_deliveries_defaults_to_3_in_code_and_template():
    template = configparser.ConfigParser(interpolation=None)
    template.read(TEMPLATE_PATH)
    assert template.get("service", "max_training_deliveries") == "3"
    assert ServiceSettings().max_training_deliveries == 3
