"""Compiled inference and the predictor: ONNX where it agrees, batched scikit-learn otherwise."""

import threading

import numpy as np
import pandas as pd
import pytest

from mlservice.config import DefaultModelSettings, InferenceSettings
from mlservice.serving import inputs, onnx_runtime
from mlservice.serving.predictor import Predictor
from mlservice.store import bundles
from mlservice.store.bundles import Engine
from mlservice.training import fitting, onnx_conversion
from tests.reference import records_to_frame, served_answer, sklearn_answer

SECRET = "k" * 64


@pytest.fixture(scope="module")
def mixed_frame():
    rng = np.random.default_rng(3)
    n = 600
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, size=n),
            "income": rng.normal(3000, 800, size=n),
            "city": rng.choice(["paris", "oslo", "rome"], size=n).astype(object),
            "plan": rng.choice(["free", "pro"], size=n).astype(object),
        }
    )
    frame.loc[::11, "age"] = np.nan
    frame.loc[::7, "city"] = None
    score = (frame["age"].fillna(40) - 40) / 10 + (frame["plan"] == "pro") * 1.5
    frame["churn"] = np.where(score + rng.normal(size=n) > 0.5, "yes", "no")
    frame["spend"] = frame["income"] * 0.1 + (frame["plan"] == "pro") * 50 + rng.normal(size=n)
    return frame


RECORDS = [
    {"age": 31.0, "income": 2500, "city": "oslo", "plan": "pro"},
    {"age": None, "income": 4100.5, "city": None, "plan": "free"},
    {"age": 55, "income": 1000, "city": "atlantis", "plan": "free"},  # unseen category
]


def _fit(frame, target, estimator, params):
    drop = "spend" if target == "churn" else "churn"
    return fitting.train(frame.drop(columns=[drop]), target, estimator, params)


@pytest.mark.parametrize(
    "estimator,params,target",
    [
        ("LogisticRegression", {}, "churn"),
        ("RandomForestClassifier", {"n_estimators": 20}, "churn"),
        ("Ridge", {}, "spend"),
        ("HistGradientBoostingClassifier", {"max_iter": 20}, "churn"),
        ("XGBClassifier", {"n_estimators": 20}, "churn"),
        ("XGBRegressor", {"n_estimators": 20}, "spend"),
        ("LGBMClassifier", {"n_estimators": 20}, "churn"),
        ("LGBMRegressor", {"n_estimators": 20}, "spend"),
    ],
)
def test_supported_pipelines_compile_and_answer_like_scikit_learn(
    mixed_frame, estimator, params, target
):
    fitted = _fit(mixed_frame, target, estimator, params)
    bundle = onnx_conversion.compile_onnx(fitted)
    assert bundle.engine == Engine.ONNXRUNTIME, bundle.engine_reason
    assert bundle.onnx and "matched scikit-learn" in bundle.engine_reason
    assert bundle.describe()["engine"]["name"] == "onnxruntime"
    # The graph travels in the signed bundle and is served after loading.
    loaded = bundles.loads(bundles.dumps(bundle, SECRET), SECRET)
    predictor = Predictor(loaded, InferenceSettings())
    assert predictor.engine == Engine.ONNXRUNTIME
    columns = inputs.records_to_columns(RECORDS, loaded.schema)
    proba = target == "churn"
    served = served_answer(predictor, columns, probabilities=proba)
    expected = sklearn_answer(fitted.bundle, inputs.columns_to_frame(columns), proba)
    if target == "churn":
        assert served["predictions"] == expected["predictions"]
        for got, want in zip(served["probabilities"], expected["probabilities"], strict=True):
            assert got.keys() == want.keys()
            assert all(abs(got[k] - want[k]) <= onnx_conversion.PROBABILITY_TOLERANCE for k in got)
    else:
        assert served["predictions"] == pytest.approx(expected["predictions"], rel=1e-4)


def test_column_names_onnx_cannot_use_as_input_names_still_compile():
    """skl2onnx renames "petal width (cm)"; the iris default model must still compile."""
    fitted = fitting.train_default_model(DefaultModelSettings(params={"max_iter": 500}))
    bundle = onnx_conversion.compile_onnx(fitted)
    assert bundle.engine == Engine.ONNXRUNTIME, bundle.engine_reason
    predictor = Predictor(bundle, InferenceSettings())
    record = {
        "sepal length (cm)": 5.1,
        "sepal width (cm)": 3.5,
        "petal length (cm)": 1.4,
        "petal width (cm)": 0.2,
    }
    columns = inputs.records_to_columns([record], bundle.schema)
    assert served_answer(predictor, columns)["predictions"] == ["setosa"]


def test_an_unconvertible_pipeline_stays_on_scikit_learn_with_a_full_sentence(
    mixed_frame, monkeypatch
):
    import skl2onnx

    def dump_arrays(*args, **kwargs):
        raise ValueError("Unable to create node with attributes={'x': [" + "1, " * 5000 + "]}")

    monkeypatch.setattr(skl2onnx, "convert_sklearn", dump_arrays)
    fitted = _fit(mixed_frame, "churn", "LogisticRegression", {})
    bundle = onnx_conversion.compile_onnx(fitted)
    assert bundle.engine == Engine.SCIKIT_LEARN and bundle.onnx is None
    assert bundle.engine_reason == (
        "skl2onnx cannot convert this LogisticRegression pipeline to ONNX (ValueError; the "
        "full message is in the worker's log), so scikit-learn serves this model."
    )
    predictor = Predictor(bundle, InferenceSettings())
    assert predictor.engine == Engine.SCIKIT_LEARN


def test_a_short_converter_message_is_quoted_in_the_sentence():
    reason = onnx_conversion.explain("skl2onnx cannot convert it", TypeError("no converter."))
    assert reason == (
        "skl2onnx cannot convert it (TypeError: no converter), so scikit-learn serves this model."
    )


def test_a_disagreeing_graph_is_not_trusted(mixed_frame, monkeypatch):
    fitted = _fit(mixed_frame, "churn", "LogisticRegression", {})
    real_run = onnx_runtime.CompiledModel.run

    def off_by_one(self, columns):
        labels, proba = real_run(self, columns)
        return 1 - labels, proba

    monkeypatch.setattr(onnx_runtime.CompiledModel, "run", off_by_one)
    bundle = onnx_conversion.compile_onnx(fitted)
    assert bundle.engine == Engine.SCIKIT_LEARN and bundle.onnx is None
    assert "held-out predictions differ" in bundle.engine_reason


def test_missing_text_is_fed_as_the_marker_the_graph_imputes():
    schema = [{"name": "city", "type": "string"}, {"name": "x", "type": "number"}]
    columns = inputs.records_to_columns(
        [{"city": None, "x": None}, {"city": "rome", "x": 2}], schema
    )
    numeric = onnx_runtime.NumericPrep.__new__(onnx_runtime.NumericPrep)
    numeric.columns, numeric.medians = ["x"], np.array([5.0])
    numeric.means, numeric.scales = np.array([1.0]), np.array([2.0])
    fed = onnx_runtime.feed(columns, schema, numeric)
    assert fed["city"].tolist() == [[onnx_runtime.MISSING_TEXT], ["rome"]]
    # Imputed and scaled in float64 like scikit-learn, then cast for the graph.
    assert fed["x"].dtype == np.float32 and fed["x"][:, 0].tolist() == [2.0, 0.5]


def test_batched_scikit_learn_answers_equal_unbatched_ones(mixed_frame):
    fitted = _fit(mixed_frame, "churn", "LogisticRegression", {})
    predictor = Predictor(fitted.bundle, InferenceSettings(batch_max_rows=64, batch_max_wait_ms=20))
    assert predictor.engine == Engine.SCIKIT_LEARN  # never compiled
    rows = mixed_frame.drop(columns=["churn", "spend"]).head(40)
    requests = [
        [{k: (None if pd.isna(v) else v) for k, v in row.items()}]
        for row in rows.to_dict("records")
    ]
    requests.append(RECORDS)  # a multi-row request in the same batch
    expected = [
        sklearn_answer(
            fitted.bundle,
            records_to_frame(r, fitted.bundle.schema),
            probabilities=(i % 2 == 0),
        )
        for i, r in enumerate(requests)
    ]
    got = [None] * len(requests)

    def call(i):
        columns = inputs.records_to_columns(requests[i], fitted.bundle.schema)
        got[i] = served_answer(predictor, columns, probabilities=(i % 2 == 0))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    # Classes are identical. Probabilities are identical up to the last bits:
    # BLAS picks its kernel by the number of rows, so even scikit-learn alone
    # rounds a row differently alone than among others.
    for answer, reference in zip(got, expected, strict=True):
        assert answer["predictions"] == reference["predictions"]
        assert ("probabilities" in answer) == ("probabilities" in reference)
        for row, ref_row in zip(
            answer.get("probabilities", []), reference.get("probabilities", []), strict=True
        ):
            assert row == pytest.approx(ref_row, rel=1e-12, abs=1e-15)
    assert predictor.batcher.batches < len(requests)  # they really were grouped


def test_near_ties_are_decided_by_scikit_learn():
    proba = np.array([[0.49999994, 0.50000006], [0.2, 0.8], [0.3, 0.3 + 1e-6], [1.0, 0.0]])
    assert onnx_runtime.near_ties(proba).tolist() == [0, 2]


def test_requests_over_the_crossover_go_to_scikit_learn(mixed_frame):
    bundle = onnx_conversion.compile_onnx(_fit(mixed_frame, "churn", "LogisticRegression", {}))
    assert bundle.engine == Engine.ONNXRUNTIME
    bundle.onnx_max_rows = 2
    predictor = Predictor(bundle, InferenceSettings(batch_max_wait_ms=0))
    small = served_answer(predictor, inputs.records_to_columns(RECORDS[:2], bundle.schema))
    assert predictor.batcher.batches == 0  # ONNX Runtime answered
    large = served_answer(predictor, inputs.records_to_columns(RECORDS, bundle.schema))
    assert predictor.batcher.batches == 1  # scikit-learn answered
    assert large["predictions"][:2] == small["predictions"]
    assert large == sklearn_answer(bundle, records_to_frame(RECORDS, bundle.schema))
