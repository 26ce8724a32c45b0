"""Who listens on a TCP port, so ``make run`` can name it before it starts anything.

A server that cannot bind its port exits, but a readiness probe on that port
would be answered by whoever holds it: another stack's Redis, NGINX or
Gunicorn. So ``make run`` checks its ports first and names the holder, and
counts a process ready only once the listening socket is its own.

Linux tells both from /proc, for the processes this user may look into:
/proc/net/tcp and tcp6 list listening sockets with their inodes, and each
/proc/<pid>/fd link names the socket inodes a process holds. Another user's
process stays anonymous: then only the port is named.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: The state of a listening socket in /proc/net/tcp (TCP_LISTEN).
_LISTEN = "0A"


@dataclass(frozen=True)
class Holder:
    """A process that holds a listening socket."""

    pid: int
    name: str
    command: str

    def __str__(self) -> str:
        return f"{self.name} (pid {self.pid}: {self.command})"


def in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether binding ``host:port`` fails because something listens there.

    Bound as servers bind (``SO_REUSEADDR``), so a connection closing in
    TIME_WAIT does not count, and a listener on 0.0.0.0 or [::] does.
    """
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def listeners_visible(proc: Path = Path("/proc")) -> bool:
    """Whether this system shows its listening sockets in /proc (Linux does)."""
    return (proc / "net" / "tcp").is_file()


def listening_inodes(port: int, proc: Path = Path("/proc")) -> set[int]:
    """The inodes of the sockets listening on ``port`` (any address, IPv4 or IPv6)."""
    inodes: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            if state == _LISTEN and int(local.rsplit(":", 1)[1], 16) == port and inode:
                inodes.add(inode)
    return inodes


def socket_inodes(pid: int, proc: Path = Path("/proc")) -> set[int]:
    """The inodes of the sockets ``pid`` holds open (empty when it cannot be looked into)."""
    inodes: set[int] = set()
    try:
        descriptors = os.listdir(proc / str(pid) / "fd")
    except OSError:  # gone, or another user's
        return inodes
    for descriptor in descriptors:
        try:
            target = os.readlink(proc / str(pid) / "fd" / descriptor)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def _all_pids(proc: Path) -> list[int]:
    return [int(entry) for entry in os.listdir(proc) if entry.isdigit()]


def holders(
    port: int, pids: Iterable[int] | None = None, proc: Path = Path("/proc")
) -> list[Holder]:
    """The processes among ``pids`` (default: all) holding a socket that listens on ``port``.

    A master and its workers share one listening socket: each is named.
    """
    inodes = listening_inodes(port, proc)
    if not inodes:
        return []
    found = []
    for pid in sorted(_all_pids(proc) if pids is None else pids):
        if socket_inodes(pid, proc) & inodes:
            found.append(holder(pid, proc))
    return found


def holder(pid: int, proc: Path = Path("/proc")) -> Holder:
    """Process ``pid``, named by its command (``?`` where it cannot be read)."""
    try:
        name = (proc / str(pid) / "comm").read_text().strip()
        argv = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")
        command = " ".join(part.decode(errors="replace") for part in argv if part)
    except OSError:
        name, command = "?", "?"
    return Holder(pid, name, command[:160])


def describe_holder(port: int) -> str:
    """Who holds ``port``, for an error message: its oldest process (the master), or a hint."""
    found = holders(port)
    if found:
        return f"in use by {found[0]}"
    return f"in use by a process this user cannot see (`sudo ss -ltnp 'sport = :{port}'` names it)"
