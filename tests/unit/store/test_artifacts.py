"""The artifact store: atomic writes, no leftovers, files NGINX alone (or everyone) can read."""

import io
import os
import stat
import tempfile

import pytest

from mlservice.errors import TooLarge
from mlservice.store.artifacts import ArtifactStore


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
