"""make run's restart policy (growing delays, giving up on a process that keeps dying), and
what it checks before it starts anything."""

import os
import socket
import stat
from pathlib import Path

import pytest

from mlservice import runstate
from mlservice.config import ConfigError
from mlservice.stack import RestartPolicy, Stack, StackError, free_port, make_private


def test_delays_double_then_it_gives_up():
    policy = RestartPolicy(limit=5, window=300)
    assert [policy.next_delay(now) for now in (0, 1, 2, 3, 4)] == [1, 2, 4, 8, 16]
    assert policy.next_delay(5) is None


def test_old_restarts_are_forgotten_after_the_window():
    policy = RestartPolicy(limit=2, window=60)
    assert policy.next_delay(0) == 1
    assert policy.next_delay(10) == 2
    assert policy.next_delay(20) is None
    assert policy.next_delay(65) == 2  # the restart at 0 s is out of the window, 10 s is not


# --- before anything starts: private files, one supervisor per directory, free ports ---


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_make_private_takes_group_and_other_away(tmp_path, tmp_path_factory):
    (tmp_path / "redis" / "appendonlydir").mkdir(parents=True)
    aof = tmp_path / "redis" / "appendonlydir" / "appendonly.aof.1.incr.aof"
    aof.write_text("secret")
    aof.chmod(0o644)
    (tmp_path / "redis").chmod(0o755)
    shared = tmp_path / "artifacts"
    shared.mkdir(mode=0o755)
    (shared / "data.csv").write_text("a\n")
    (shared / "data.csv").chmod(0o644)
    target = tmp_path_factory.mktemp("elsewhere") / "target"
    target.write_text("not ours to change")
    target.chmod(0o644)
    (tmp_path / "link").symlink_to(target)
    tmp_path.chmod(0o755)
    make_private(tmp_path, skip=shared)
    assert [mode(p) for p in (tmp_path, tmp_path / "redis", aof)] == [0o700, 0o700, 0o600]
    assert (mode(shared), mode(shared / "data.csv")) == (0o755, 0o644)
    assert mode(target) == 0o644  # a link's target is left alone
    config = tmp_path / "config.properties"
    config.write_text("[auth_info]\n")
    config.chmod(0o644)
    make_private(config)
    assert mode(config) == 0o600


def stack_in(tmp_path: Path, **ports: int) -> Stack:
    return Stack(
        run_dir=tmp_path / "run",
        config_path=tmp_path / "config.properties",
        redis_config_path=tmp_path / "redis.properties",
        **ports,
    )


def test_a_busy_port_names_its_process(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        stack = stack_in(tmp_path, http_port=free_port(), redis_port=port, api_port=free_port())
        with pytest.raises(StackError) as raised:
            stack._check_ports()
    lines = str(raised.value).splitlines()
    assert lines[0] == "cannot start:"
    assert lines[1].startswith(
        f"  port {port} (redis-server; make run REDIS_PORT=..., --redis-port) is in use by "
    )
    assert f"(pid {os.getpid()}: " in lines[1]
    assert lines[2] == (
        "Stop what holds it, or run on other ports, e.g. "
        "make run PORT=9000 REDIS_PORT=6380 API_PORT=8001"
    )


def test_one_port_for_two_processes_is_refused(tmp_path):
    port = free_port()
    stack = stack_in(tmp_path, http_port=port, redis_port=free_port(), api_port=port)
    with pytest.raises(StackError) as raised:
        stack._check_ports()
    assert f"--api-port and --port are both {port}: give each its own port" in str(raised.value)


def test_a_second_supervisor_of_one_directory_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    held = runstate.lock(tmp_path / "run")
    try:
        with pytest.raises(StackError) as raised:
            stack_in(tmp_path).prepare()
    finally:
        held.close()
    assert str(raised.value) == (
        f"make run is already running from {tmp_path / 'run'}; stop it first "
        "(Ctrl-C in its terminal), or give this one another --run-dir"
    )


def test_a_misspelled_key_is_refused_before_anything_starts(tmp_path):
    (tmp_path / "config.properties").write_text(
        "[auth_info]\nexpiry = 3\nexpiry_time_unit = days\n[service]\nmax_uplod_mb = 5\n"
    )
    stack = stack_in(tmp_path)
    with pytest.raises(ConfigError) as raised:
        stack.prepare()
    assert str(raised.value) == (
        f"{tmp_path / 'config.properties'}: [service] max_uplod_mb is not a setting; "
        "did you mean max_upload_mb?"
    )
    assert stack.processes == {}
    assert mode(tmp_path / "redis.properties") == 0o600  # written (with its passwords), privately
    again = runstate.lock(tmp_path / "run")  # the refused start let go of the directory
    assert again is not None
    again.close()
