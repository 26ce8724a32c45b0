"""Model bundles: files written before the package had sub-packages still load."""

import numpy as np
from sklearn.linear_model import LogisticRegression

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
