"""make run's lock and state file: one supervisor per run directory, processes known for good."""

import os
import stat
import subprocess
import sys

from mlservice import runstate
from tests.helpers import eventually


def state_of(pid: int, **processes) -> runstate.RunState:
    return runstate.RunState(
        supervisor=runstate.ProcessId(pid, runstate.start_time(pid) or 0),
        url="http://127.0.0.1:8880",
        http_port=8880,
        redis_port=6379,
        api_port=8000,
        redis_host="127.0.0.1",
        config_path="/c/config.properties",
        redis_config_path="/c/redis.properties",
        processes=processes,
    )


def test_the_state_is_written_privately_and_read_back(tmp_path):
    me = runstate.ProcessId.of(os.getpid())
    state = state_of(os.getpid(), redis=[me])
    runstate.write(tmp_path, state)
    assert stat.S_IMODE((tmp_path / runstate.STATE_FILE).stat().st_mode) == 0o600
    assert runstate.read(tmp_path) == state
    assert runstate.running(tmp_path) == state
    assert state.environment() == {
        "MLSERVICE_CONFIG": "/c/config.properties",
        "MLSERVICE_REDIS_CONFIG": "/c/redis.properties",
        "MLSERVICE_REDIS_HOST": "127.0.0.1",
        "MLSERVICE_REDIS_PORT": "6379",
    }
    runstate.remove(tmp_path)
    assert runstate.read(tmp_path) is None


def test_a_dead_supervisor_is_not_running(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    runstate.write(tmp_path, state_of(child.pid))
    assert runstate.read(tmp_path) is not None
    assert runstate.running(tmp_path) is None


def test_a_reused_pid_is_another_process():
    me = runstate.ProcessId.of(os.getpid())
    assert me is not None and me.alive()
    assert not runstate.ProcessId(os.getpid(), me.started + 1).alive()


def test_a_zombie_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    started = runstate.ProcessId.of(child.pid)
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
    assert runstate.start_time(child.pid) is None
    assert started is None or not started.alive()
    child.wait()


def test_descendants_are_found_below_a_process():
    code = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'input()'])"
    parent = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
    try:
        below = eventually(lambda: runstate.descendants(parent.pid), timeout=30)
        assert len(below) == 1
        assert os.getpid() not in below and parent.pid not in below
    finally:
        parent.communicate(b"\n", timeout=30)


def test_the_lock_is_held_once(tmp_path):
    first = runstate.lock(tmp_path)
    assert first is not None
    assert runstate.lock(tmp_path) is None
    first.close()
    again = runstate.lock(tmp_path)
    assert again is not None
    again.close()


def test_garbage_is_no_state(tmp_path):
    (tmp_path / runstate.STATE_FILE).write_text("{not json")
    assert runstate.read(tmp_path) is None
