"""The artifact store: atomic writes, no leftovers, files NGINX alone (or everyone) can read."""

import errno
import io
import os
import stat
import tempfile
import time

import pytest

from mlservice.errors import ARTIFACT_STORE_FULL, StoreFull, TooLarge
from mlservice.store.artifacts import (
    NGINX_BODY_MAX_AGE_SECONDS,
    PARTIAL_MIN_AGE_SECONDS,
    ArtifactStore,
    hold_lock,
)


@pytest.fixture(params=[0o077, 0o022, 0o000])
def umask(request):
    """The service runs under umask 077 natively and 022 in Docker: the modes never depend on it."""
    previous = os.umask(request.param)
    yield
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    "world_readable, file_mode, dir_mode", [(False, 0o600, 0o700), (True, 0o644, 0o755)]
)
def test_written_and_adopted_files_have_the_stores_modes(
    tmp_path, umask, world_readable, file_mode, dir_mode
):
    """Private by default; 0644 and 0755 for an NGINX of another user (artifacts_world_readable)."""
    store = ArtifactStore(tmp_path, world_readable)
    with store.writing("models", "m1", "model.mlbundle") as (handle, final):
        handle.write(b"bundle")
    assert final.read_bytes() == b"bundle"
    assert mode(final) == file_mode and mode(final.parent) == dir_mode
    assert mode(final.parent.parent) == dir_mode
    with tempfile.NamedTemporaryFile(dir=store.incoming()) as upload:
        upload.write(b"a,b\n1,2\n")
        adopted = store.adopt(upload, "datasets", "d1", "data.csv")
    assert adopted.read_bytes() == b"a,b\n1,2\n" and mode(adopted) == file_mode
    assert mode(adopted.parent) == dir_mode and mode(adopted.parent.parent) == dir_mode
    assert list(store.incoming().iterdir()) == []  # the temporary name is gone


def test_failed_write_leaves_nothing(tmp_path):
    store = ArtifactStore(tmp_path)
    with pytest.raises(TooLarge):
        with store.writing("datasets", "d2", "data.csv") as (handle, _):
            store.copy_stream(io.BytesIO(b"x" * 3_000_000), handle, limit=1_000_000)
    assert not (tmp_path / "datasets" / "d2").exists()


def aged(path, seconds: float) -> None:
    """Make ``path`` look untouched for ``seconds``."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_the_sweep_removes_dead_writers_partial_files_and_never_a_locked_one(tmp_path):
    store = ArtifactStore(tmp_path)
    item = tmp_path / "datasets" / ("a" * 32)
    item.mkdir(parents=True)
    dead = item / ".predictions.csv.00.part"
    dead.write_bytes(b"half")
    fresh = tmp_path / "datasets" / ("b" * 32) / ".data.csv.00.part"
    fresh.parent.mkdir()
    fresh.write_bytes(b"just written")
    incoming = store.incoming()
    with tempfile.NamedTemporaryFile(dir=incoming, prefix="upload-", suffix=".part") as live:
        hold_lock(live)
        live.write(b"being written")
        live.flush()
        nginx_old = tmp_path / "uploads" / "0000000001"
        nginx_old.parent.mkdir()
        nginx_old.write_bytes(b"body")
        nginx_new = tmp_path / "uploads" / "0000000002"
        nginx_new.write_bytes(b"body")
        report_part = tmp_path / "models" / ("e" * 32) / "report" / ".roc.png.00.part"
        report_part.parent.mkdir(parents=True)
        report_part.write_bytes(b"half a plot")
        aged(report_part, PARTIAL_MIN_AGE_SECONDS + 1)
        kept_artifact = tmp_path / "models" / ("c" * 32) / "bundle.bin"
        kept_artifact.parent.mkdir(parents=True)
        kept_artifact.write_bytes(b"whole")
        for path in (dead, item, live.name):
            aged(path, PARTIAL_MIN_AGE_SECONDS + 1)
        aged(nginx_old, NGINX_BODY_MAX_AGE_SECONDS + 1)
        aged(nginx_new, PARTIAL_MIN_AGE_SECONDS + 1)

        removed = store.sweep_partial()

        assert sorted(removed) == sorted([dead, nginx_old, report_part])
        assert not item.exists()  # the dead writer's file was all it held
        assert fresh.exists() and nginx_new.exists() and kept_artifact.exists()
        assert os.path.exists(live.name)  # its writer holds the lock
    assert store.sweep_partial() == []  # closed: NamedTemporaryFile removed it itself


def test_a_full_disk_while_writing_is_store_full_and_leaves_nothing(tmp_path):
    store = ArtifactStore(tmp_path)
    with pytest.raises(StoreFull) as refused:
        with store.writing("datasets", "d" * 32, "data.csv") as (handle, _):
            handle.write(b"some")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert refused.value.status == 507
    assert refused.value.message == ARTIFACT_STORE_FULL
    assert not (tmp_path / "datasets" / ("d" * 32)).exists()
