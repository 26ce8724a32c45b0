"""Who listens on a port: from a real socket of this process, and from a /proc written by hand."""

import os
import socket
from pathlib import Path

import pytest

from mlservice import ports
from mlservice.stack import free_port


@pytest.fixture
def listener():
    """A socket of this process listening on a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_listening_port_is_in_use_and_names_this_process(listener):
    assert ports.in_use(listener)
    found = ports.holders(listener)
    assert [holder.pid for holder in found] == [os.getpid()]
    assert ports.holders(listener, [os.getpid()]) == found
    assert ports.holders(listener, [os.getppid()]) == []  # not among the given processes
    described = ports.describe_holder(listener)
    assert described.startswith(f"in use by {found[0].name} (pid {os.getpid()}: ")
    assert "pytest" in found[0].command or "python" in found[0].command


def test_a_free_port_is_not_in_use():
    port = free_port()
    assert not ports.in_use(port)
    assert ports.holders(port) == []


def test_a_listener_on_every_address_holds_loopback_too():
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert ports.in_use(port, "127.0.0.1")
        assert [holder.pid for holder in ports.holders(port)] == [os.getpid()]


def test_a_connected_socket_is_no_listener(listener):
    """Only LISTEN rows count: a client connected to the port holds no listener of it."""
    with socket.create_connection(("127.0.0.1", listener)) as client:
        inode = os.fstat(client.fileno()).st_ino
        assert inode not in ports.listening_inodes(listener)


TCP_HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
    "   uid  timeout inode\n"
)


def fake_proc(tmp_path: Path) -> Path:
    """A /proc with NGINX (pid 42, master) listening on 127.0.0.1:8080 and [::]:8080,
    a client (pid 43) connected to 8080, and pid 44 whose descriptors cannot be read."""
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    (proc / "net" / "tcp").write_text(
        TCP_HEADER + "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000"
        "     0        0 111 1 0000000000000000 100 0 0 10 0\n"
        + "   1: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000"
        "     0        0 222 1 0000000000000000 20 4 30 10 -1\n"
    )
    (proc / "net" / "tcp6").write_text(
        TCP_HEADER
        + "   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000"
        " 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0\n"
    )
    for pid, name, argv, sockets in [
        ("42", "nginx", b"nginx: master process nginx -c x\0", {"6": 111, "7": 333}),
        ("43", "curl", b"curl\0http://127.0.0.1:8080\0", {"3": 222}),
    ]:
        (proc / pid / "fd").mkdir(parents=True)
        (proc / pid / "comm").write_text(name + "\n")
        (proc / pid / "cmdline").write_bytes(argv)
        for descriptor, inode in sockets.items():
            os.symlink(f"socket:[{inode}]", proc / pid / "fd" / descriptor)
        os.symlink("/dev/null", proc / pid / "fd" / "0")
    (proc / "44").mkdir()
    return proc


def test_the_holder_is_read_from_proc(tmp_path):
    proc = fake_proc(tmp_path)
    assert ports.listeners_visible(proc) and not ports.listeners_visible(tmp_path)
    assert ports.listening_inodes(8080, proc) == {111, 333}
    assert ports.listening_inodes(40000, proc) == set()  # 9C40 is only a client's end
    assert ports.holders(8080, proc=proc) == [
        ports.Holder(42, "nginx", "nginx: master process nginx -c x")
    ]
    assert ports.holders(8080, [43, 44], proc=proc) == []
    assert ports.holders(9999, proc=proc) == []


def test_without_a_visible_holder_only_the_port_is_named(monkeypatch):
    monkeypatch.setattr(ports, "holders", lambda port: [])
    assert ports.describe_holder(6379) == (
        "in use by a process this user cannot see (`sudo ss -ltnp 'sport = :6379'` names it)"
    )
