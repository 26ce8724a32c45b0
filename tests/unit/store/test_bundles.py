"""Model bundles: files written before the package had sub-packages still load."""

import os
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mlservice.errors import TooLarge
from mlservice.store import bundles
from mlservice.store.bundles import ModelBundle

SECRET = "k" * 64


def small_bundle() -> ModelBundle:
    rows = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
    pipeline = LogisticRegression().fit(rows, [0, 0, 0, 1, 1, 1])
    return ModelBundle(
        pipeline=pipeline,
        task="classification",
        estimator="LogisticRegression",
        params={},
        schema=[{"name": "x", "type": "number"}],
        target="y",
    )


def test_a_bundle_pickled_under_the_old_module_path_still_loads():
    bundle = small_bundle()
    current = ModelBundle.__module__
    ModelBundle.__module__ = "mlservice.bundles"  # as bundles written before the reorganisation
    try:
        data = bundles.dumps(bundle, SECRET)
    finally:
        ModelBundle.__module__ = current
    assert ModelBundle.__module__ == "mlservice.store.bundles"
    assert b"mlservice.bundles" in data
    assert b"mlservice.store.bundles" not in data

    loaded = bundles.loads(data, SECRET)

    assert type(loaded) is ModelBundle
    assert loaded.task == "classification"
    assert loaded.estimator == "LogisticRegression"
    assert loaded.params == {}
    assert loaded.schema == [{"name": "x", "type": "number"}]
    assert loaded.target == "y"
    assert loaded.describe() == bundle.describe()
    rows = np.array([[0.5], [4.5]])
    assert loaded.pipeline.predict(rows).tolist() == [0, 1]


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_signed_file_verifies_a_chunk_at_a_time(tmp_path):
    path = tmp_path / "model.mlbundle"
    path.write_bytes(bundles.dumps(small_bundle(), SECRET))
    with path.open("rb") as handle:
        bundles.verify_stream(handle, SECRET)
        handle.seek(0)
        assert bundles.loads(handle.read(), SECRET).estimator == "LogisticRegression"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a model bundle written by this service"),
        (bundles.MAGIC + b"s" * 32, "not a model bundle written by this service"),
        (b"PK\x03\x04" + b"z" * 100, "not a model bundle written by this service"),
        (
            bundles.MAGIC + b"s" * 32 + b"pickle",
            "model bundle signature does not verify (tampered or foreign bundle)",
        ),
    ],
)
def test_a_file_that_is_not_signed_is_refused(tmp_path, content, message):
    path = tmp_path / "upload.part"
    path.write_bytes(content)
    with path.open("rb") as handle, pytest.raises(bundles.BundleError) as caught:
        bundles.verify_stream(handle, SECRET)
    assert str(caught.value) == message


def test_junk_is_refused_without_being_held_in_memory(tmp_path):
    """64 MiB of junk with a bundle's magic: the whole file is hashed, one MiB at a time."""
    path = tmp_path / "junk.part"
    with path.open("wb") as handle:
        handle.write(bundles.MAGIC + b"s" * 32)
        for _ in range(64):
            handle.write(os.urandom(1024 * 1024))
    Path("/proc/self/clear_refs").write_text("5")
    before = _peak_rss_kib()
    with path.open("rb") as handle, pytest.raises(bundles.BundleError):
        bundles.verify_stream(handle, SECRET)
    growth_mib = (_peak_rss_kib() - before) / 1024
    assert growth_mib < 8, f"grew by {growth_mib:.0f} MiB"


def test_a_file_over_the_limit_is_413_once_the_count_passes_it(tmp_path):
    path = tmp_path / "big.part"
    path.write_bytes(bundles.MAGIC + b"s" * 32 + b"x" * 3 * bundles.CHUNK_SIZE)
    with path.open("rb") as handle, pytest.raises(TooLarge) as caught:
        bundles.verify_stream(handle, SECRET, limit=2 * bundles.CHUNK_SIZE)
    assert caught.value.message == f"the bundle is larger than {2 * bundles.CHUNK_SIZE} bytes"
