"""The downloadable ONNX graph: raw columns in, exactly the served graph's answers out."""

import json

import numpy as np
import onnxruntime
import pandas as pd
import pytest

from mlservice.serving import onnx_export
from mlservice.serving.onnx_runtime import MISSING_TEXT, CompiledModel
from mlservice.training import fitting, onnx_conversion
from mlservice.training.pipeline import as_model_input

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 300
    data = pd.DataFrame(
        {
            "width (cm)": rng.normal(10, 3, size=n),
            "weight": rng.normal(70, 12, size=n),
            "colour": rng.choice(["red", "green", "blue"], size=n).astype(object),
        }
    )
    data.loc[::9, "width (cm)"] = np.nan
    data.loc[::8, "colour"] = None
    data["kind"] = np.where(data["width (cm)"].fillna(10) + rng.normal(size=n) > 10, "big", "small")
    data["price"] = data["weight"] * 1.5 + (data["colour"] == "blue") * 9 + rng.normal(size=n)
    return data


def _session(graph: bytes) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize(
    "estimator,target,drop",
    [
        ("LogisticRegression", "kind", "price"),
        ("XGBClassifier", "kind", "price"),
        ("LGBMRegressor", "price", "kind"),
    ],
)
def test_the_graph_takes_raw_columns_and_answers_as_the_served_one(frame, estimator, target, drop):
    fitted = fitting.train(frame.drop(columns=[drop]), target, estimator, {})
    bundle = onnx_conversion.compile_onnx(fitted)
    assert bundle.onnx is not None, bundle.engine_reason
    session = _session(onnx_export.portable_graph(bundle))
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["mlservice.missing_text"]) == MISSING_TEXT
    inputs = json.loads(meta["mlservice.inputs"])
    assert inputs == bundle.engine_info()["onnx_inputs"]
    assert [entry["type"] for entry in inputs] == ["double", "double", "string"]
    x = as_model_input(frame, bundle.schema)
    feed = {}
    for entry in inputs:
        values = x[entry["column"]]
        if entry["type"] == "double":
            feed[entry["input"]] = values.to_numpy(np.float64).reshape(-1, 1)
        else:
            text = [v if isinstance(v, str) else MISSING_TEXT for v in values]
            feed[entry["input"]] = np.array(text, dtype=object).reshape(-1, 1)
    got = session.run(None, feed)
    served = CompiledModel(bundle.onnx, bundle.schema, bundle.task, bundle.pipeline)
    labels, probabilities = served.run({name: x[name].to_numpy() for name in x.columns})
    if target == "kind":
        assert json.loads(meta["mlservice.classes"]) == ["big", "small"]
        assert np.array_equal(got[1], probabilities)
        assert np.array_equal(got[0].reshape(-1), labels.reshape(-1))
    else:
        assert np.array_equal(got[0].reshape(-1).astype(np.float64), labels)


def test_a_model_without_a_graph_has_none_to_export(frame):
    fitted = fitting.train(frame.drop(columns=["price"]), "kind", "LogisticRegression", {})
    with pytest.raises(onnx_export.NoGraph):
        onnx_export.portable_graph(fitted.bundle)
