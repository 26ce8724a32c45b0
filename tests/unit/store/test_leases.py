"""Leases: who holds one, and when a holder counts as dead."""

import json
import os
import subprocess
import sys
import time

from mlservice.store import leases


def holder(pid: int, host: str | None = None) -> str:
    return json.dumps({"host": host or leases._this_host(), "pid": pid, "run": "x", "at": 0})


def test_a_live_process_of_this_host_holds_its_lease():
    assert not leases.holder_is_dead(holder(os.getpid()))
    assert not leases.holder_is_dead(holder(os.getppid()))


def test_a_process_that_exited_or_was_killed_holds_nothing():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert leases.holder_is_dead(holder(process.pid))


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
        assert leases.holder_is_dead(holder(process.pid))
    finally:
        process.wait()


def test_holders_on_other_hosts_or_unreadable_are_never_judged():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert not leases.holder_is_dead(holder(process.pid, host="another-container pid:[1]"))
    assert not leases.holder_is_dead("not json")
    assert not leases.holder_is_dead(json.dumps({"host": leases._this_host()}))


def test_the_lease_outlives_several_missed_heartbeats():
    assert leases.LEASE_SECONDS >= 4 * leases.HEARTBEAT_SECONDS
