"""The artifact store: atomic writes, no leftovers, files NGINX can read."""

import io
import os
import stat
import tempfile

import pytest

from mlservice.errors import TooLarge
from mlservice.store.artifacts import ArtifactStore


@pytest.fixture
def strict_umask():
    """The service may run under umask 077; NGINX (another user) must still read artifacts."""
    previous = os.umask(0o077)
    yield
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_and_adopted_files_are_world_readable(tmp_path, strict_umask):
    store = ArtifactStore(tmp_path)
    with store.writing("models", "m1", "model.mlbundle") as (handle, final):
        handle.write(b"bundle")
    assert final.read_bytes() == b"bundle"
    assert mode(final) == 0o644 and mode(final.parent) == 0o755
    assert mode(final.parent.parent) == 0o755
    with tempfile.NamedTemporaryFile(dir=store.incoming()) as upload:
        upload.write(b"a,b\n1,2\n")
        adopted = store.adopt(upload, "datasets", "d1", "data.csv")
    assert adopted.read_bytes() == b"a,b\n1,2\n" and mode(adopted) == 0o644
    assert list(store.incoming().iterdir()) == []  # the temporary name is gone


def test_failed_write_leaves_nothing(tmp_path):
    store = ArtifactStore(tmp_path)
    with pytest.raises(TooLarge):
        with store.writing("datasets", "d2", "data.csv") as (handle, _):
            store.copy_stream(io.BytesIO(b"x" * 3_000_000), handle, limit=1_000_000)
    assert not (tmp_path / "datasets" / "d2").exists()
