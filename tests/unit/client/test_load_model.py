"""load_model: a bundle opened by the client alone, checked before it is unpickled."""

import hashlib
import io
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest

from mlservice.store import bundles
from mlservice.training import fitting
from mlservice_client import BundleRejected, load_model

pytestmark = pytest.mark.unit

SECRET = "s" * 64


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 120
    data = pd.DataFrame(
        {
            "size": rng.normal(5, 2, size=n),
            "shade": rng.choice(["dark", "light"], size=n).astype(object),
        }
    )
    data.loc[::10, "size"] = np.nan
    data["label"] = np.where(data["size"].fillna(5) > 5, "big", "small")
    return data


@pytest.fixture(scope="module")
def bundle_file(frame, tmp_path_factory):
    fitted = fitting.train(frame, "label", "LogisticRegression", {})
    path = tmp_path_factory.mktemp("bundle") / "model.mlbundle"
    path.write_bytes(bundles.dumps(fitted.bundle, SECRET))
    return path, fitted.bundle


def test_a_bundle_predicts_as_its_pipeline(bundle_file, frame):
    path, bundle = bundle_file
    model = load_model(path, sha256=hashlib.sha256(path.read_bytes()).hexdigest(), secret=SECRET)
    rows = frame.drop(columns="label").assign(extra="ignored")
    x = rows[["size", "shade"]]
    expected = np.asarray(bundle.classes, dtype=object)[bundle.pipeline.predict(x)]
    assert model.engine == "scikit-learn" and model.classes == ["big", "small"]
    assert model.predict(rows).tolist() == expected.tolist()
    assert np.array_equal(model.predict_proba(rows), bundle.pipeline.predict_proba(x))
    table = model.predict_frame(rows.head(3), probabilities=True)
    assert list(table.columns) == ["prediction", "probability_big", "probability_small"]
    with pytest.raises(KeyError, match="missing columns: shade"):
        model.predict(rows[["size"]])


def test_a_wrong_hash_a_wrong_secret_and_a_foreign_file_are_refused(bundle_file, tmp_path):
    path, _ = bundle_file
    with pytest.raises(BundleRejected, match="does not have the sha256 00"):
        load_model(path, sha256="0" * 64)
    with pytest.raises(BundleRejected, match="the signature does not verify under that secret"):
        load_model(path, secret="other")
    foreign = tmp_path / "plain.pkl"
    foreign.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(BundleRejected, match="is not a model bundle written by the ML Service"):
        load_model(foreign)


def test_a_bundle_naming_another_server_class_is_refused_unimported(tmp_path):
    buffer = io.BytesIO()
    joblib.dump(bundles.Engine.ONNXRUNTIME, buffer)  # a server enum, not a plain value
    path = tmp_path / "odd.mlbundle"
    path.write_bytes(bundles.MAGIC + b"\0" * 32 + buffer.getvalue())
    with pytest.raises(pickle.UnpicklingError, match="mlservice.store.bundles.Engine"):
        load_model(path)


def test_a_pipeline_step_the_client_does_not_carry_is_named(tmp_path):
    # A pickle naming a class of the server module (GLOBAL, then STOP), written by hand.
    payload = b"\x80\x02cmlservice.table_features\nDateFeaturesOfTheFuture\n."
    path = tmp_path / "future.mlbundle"
    path.write_bytes(bundles.MAGIC + b"\0" * 32 + payload)
    with pytest.raises(pickle.UnpicklingError, match="does not carry; upgrade mlservice-client"):
        load_model(path)
