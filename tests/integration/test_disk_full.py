"""A full artifact store answers 507 naming it and keeps nothing partial; dead writers' partial
files are swept, live ones never.

A stack of its own (Redis, Gunicorn, NGINX; a worker for the sweep) whose
artifact directory is a 12 MiB tmpfs, mounted for this module (skipped where
mounting is not allowed: it needs root). The session's stack is left alone.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests

from mlservice.errors import ARTIFACT_STORE_FULL
from mlservice.stack import Stack
from mlservice.store.artifacts import PARTIAL_MIN_AGE_SECONDS
from tests.conftest import ADMIN, stack_of_its_own
from tests.helpers import eventually

STORE_MB = 12


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> Path:
    """A 12 MiB tmpfs for the artifact directory."""
    mount_point = tmp_path_factory.mktemp("small-store")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={STORE_MB}m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture(scope="module")
def full_stack(tmp_path_factory, small_store):
    stack = stack_of_its_own(tmp_path_factory.mktemp("disk-full"), artifact_dir=small_store)
    stack.prepare()
    stack.start_redis()
    stack.start_api()
    stack.start_nginx()
    token = requests.get(stack.url + "/resource/auth", auth=ADMIN, timeout=30).json()["token"]
    yield stack, token
    stack.stop()


def files_under(directory: Path) -> list[str]:
    """Every file (not directory) under ``directory``, relative to it."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if not p.is_dir())


def csv_of(megabytes: float) -> bytes:
    row = b"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29\n"
    return (
        b"a"
        + b",a".join(str(i).encode() for i in range(1, 29))
        + b"\n"
        + row * int(megabytes * 1024 * 1024 / len(row))
    )


def datasets(stack: Stack, token: str) -> list:
    response = requests.get(
        stack.url + "/resource/datasets", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return body["datasets"] if isinstance(body, dict) else body


def test_an_upload_the_api_cannot_store_is_507_and_leaves_nothing(full_stack, small_store):
    """NGINX stores the 7 MiB body; the API's copy of its file part finds the disk full."""
    stack, token = full_stack
    response = requests.post(
        stack.url + "/resource/datasets",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("big.csv", csv_of(7), "text/csv")},
        timeout=60,
    )
    assert response.status_code == 507, response.text
    assert response.json() == {"status": ARTIFACT_STORE_FULL}
    assert files_under(small_store) == []
    assert datasets(stack, token) == []


def test_an_upload_nginx_cannot_store_is_507_and_leaves_nothing(full_stack, small_store):
    """A raw body larger than the whole store: NGINX's own write fails."""
    stack, token = full_stack
    try:
        response = requests.post(
            stack.url + "/resource/datasets",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
            data=csv_of(STORE_MB + 1),
            timeout=60,
        )
    except requests.ConnectionError as exc:  # NGINX answered before the body was all sent
        pytest.fail(f"no answer read: {exc}")
    assert response.status_code == 507, response.text
    assert response.json() == {"status": ARTIFACT_STORE_FULL}
    eventually(lambda: files_under(small_store) == [], timeout=10, message="NGINX left a file")
    assert datasets(stack, token) == []


WRITER = textwrap.dedent(
    """
    import sys, tempfile, time
    from mlservice.store.artifacts import hold_lock
    part = tempfile.NamedTemporaryFile(dir=sys.argv[1], prefix="upload-", suffix=".part",
                                       delete=False)
    hold_lock(part)
    part.write(b"x" * 1024 * 1024)
    part.flush()
    print(part.name, flush=True)
    time.sleep(600)
    """
)


def writer(incoming: Path) -> tuple[subprocess.Popen, Path]:
    """A process writing an upload's file part (locked, as the API's), and that file."""
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(incoming)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    with process.stdout:
        return process, Path(process.stdout.readline().strip())


def killed_upload(stack: Stack, token: str, incoming: Path) -> Path:
    """An upload streamed straight to Gunicorn (no NGINX to buffer it) whose API worker is
    killed half-way: the spooled file part it leaves behind."""
    boundary = "mlservice-test-boundary"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    sent = head + csv_of(2)
    length = len(sent) + 4 * 1024 * 1024  # the rest never comes
    request = (
        "POST /resource/datasets HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{stack.api_port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", stack.api_port), timeout=30) as connection:
        connection.sendall(request + sent)

        def spooled() -> Path | None:
            parts = [p for p in incoming.glob("upload-*.part") if p.stat().st_size > 0]
            return parts[0] if parts else None

        left = eventually(spooled, timeout=30, message="the API spooled nothing")
        workers = stack.api_worker_pids()
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
    eventually(
        lambda: set(stack.api_worker_pids()).isdisjoint(workers) and stack.api_worker_pids(),
        timeout=60,
        message="Gunicorn did not start a new worker",
    )
    return left


def test_partial_files_of_dead_writers_are_swept_at_start_and_live_ones_kept(
    full_stack, small_store
):
    stack, token = full_stack
    incoming = small_store / "incoming"
    incoming.mkdir(exist_ok=True)
    left = killed_upload(stack, token, incoming)
    assert left.exists()  # what the killed worker left
    live, in_use = writer(incoming)  # one still being written
    scoring_dir = small_store / "datasets" / ("0" * 32)
    scoring_dir.mkdir(parents=True)
    half_written = scoring_dir / ".predictions.csv.0123.part"  # a killed scoring job's
    half_written.write_bytes(b"a,b\n1,2\n")
    old = time.time() - PARTIAL_MIN_AGE_SECONDS - 5
    for path in (left, in_use, half_written, scoring_dir):
        os.utime(path, (old, old))
    try:
        stack.start_worker()  # sweeps when it starts
        eventually(
            lambda: not left.exists() and not half_written.exists(),
            timeout=90,
            message="the dead writers' partial files were not swept",
        )
        assert not scoring_dir.exists()  # it held nothing else
        assert in_use.exists()  # its writer lives: never swept
        log = (stack.logs / "worker.log").read_text(errors="replace")
        assert "removed 2 partial file(s)" in log
    finally:
        live.kill()
        live.wait(timeout=10)
        in_use.unlink(missing_ok=True)
        stack.stop_worker()
