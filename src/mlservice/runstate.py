"""What a running ``make run`` left in its run directory (var/): a lock and a state file.

``stack.lock`` is held (``flock``) by the supervisor for as long as it
lives; the kernel lets go of it when the process dies, however it dies, so a
free lock means no supervisor of this checkout is running. ``stack.json``
(0600) names the supervisor, the ports, the configuration files and every
process it started, with its start time so that a reused pid is never taken
for one of them. It is read

* by the next ``make run`` of the checkout, to find and stop what a killed
  supervisor left behind (none should be left: its children die with it,
  see :mod:`mlservice.stack`; this is the second line);
* by ``mlservice`` commands, to reach this checkout's stack on the ports it
  runs on, not whatever listens on the default port.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

STATE_FILE = "stack.json"
LOCK_FILE = "stack.lock"


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), or None if it is gone or a zombie.

    A pid alone may have been reused by an unrelated process; a pid and its
    start time name one process for good.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    if fields[0] in ("Z", "X"):  # exited, waiting to be reaped
        return None
    return int(fields[19])


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (its workers, their children), read from /proc."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{parent}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.append(child)
                    pending.append(child)
    return found


@dataclass(frozen=True)
class ProcessId:
    """One process for good: its pid and when it started."""

    pid: int
    started: int

    @classmethod
    def of(cls, pid: int) -> ProcessId | None:
        started = start_time(pid)
        return None if started is None else cls(pid, started)

    def alive(self) -> bool:
        return start_time(self.pid) == self.started


@dataclass
class RunState:
    """A running stack: its supervisor, where it listens, what it reads, what it started."""

    supervisor: ProcessId
    url: str
    http_port: int
    redis_port: int
    api_port: int
    redis_host: str
    config_path: str
    redis_config_path: str
    #: Each process by name: itself first, then the processes below it.
    processes: dict[str, list[ProcessId]] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        """The variables that point a process of the service at this stack."""
        return {
            "MLSERVICE_CONFIG": self.config_path,
            "MLSERVICE_REDIS_CONFIG": self.redis_config_path,
            "MLSERVICE_REDIS_HOST": self.redis_host,
            "MLSERVICE_REDIS_PORT": str(self.redis_port),
        }


def write(run_dir: Path, state: RunState) -> None:
    """Save ``state`` (0600, renamed into place: a reader never sees half of it)."""
    temporary = run_dir / f".{STATE_FILE}.{os.getpid()}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(asdict(state), handle, indent=1)
    os.replace(temporary, run_dir / STATE_FILE)


def read(run_dir: Path) -> RunState | None:
    """The state a supervisor saved in ``run_dir`` (alive or not), or None."""
    try:
        saved = json.loads((run_dir / STATE_FILE).read_text())
        saved["supervisor"] = ProcessId(**saved["supervisor"])
        saved["processes"] = {
            name: [ProcessId(**ids) for ids in tree] for name, tree in saved["processes"].items()
        }
        return RunState(**saved)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def running(run_dir: Path) -> RunState | None:
    """The state of the stack running from ``run_dir``, or None when none runs."""
    state = read(run_dir)
    return state if state is not None and state.supervisor.alive() else None


def remove(run_dir: Path) -> None:
    (run_dir / STATE_FILE).unlink(missing_ok=True)


def lock(run_dir: Path) -> IO[bytes] | None:
    """Hold ``run_dir``'s lock for as long as the returned file is open; None if held already.

    The descriptor is not inherited by children (Python opens files
    close-on-exec), so the lock dies with the supervisor alone.
    """
    descriptor = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    handle = os.fdopen(descriptor, "r+b")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle
