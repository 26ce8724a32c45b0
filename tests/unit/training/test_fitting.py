"""Training, estimators and bundles, on small in-memory data."""

import numpy as np
import pandas as pd
import pytest

from mlservice.config import DefaultModelSettings
from mlservice.store import bundles
from mlservice.store.bundles import BundleError
from mlservice.training import allowed_estimators as estimators
from mlservice.training import fitting as training
from tests.reference import records_to_frame, sklearn_answer

SECRET = "k" * 64


@pytest.fixture(scope="module")
def iris_bundle():
    return training.train_default_model(DefaultModelSettings(params={"max_iter": 500})).bundle


def test_default_model_uses_iris_names(iris_bundle):
    names = [column["name"] for column in iris_bundle.schema]
    assert names == [
        "sepal length (cm)",
        "sepal width (cm)",
        "petal length (cm)",
        "petal width (cm)",
    ]
    assert iris_bundle.classes == ["setosa", "versicolor", "virginica"]
    assert iris_bundle.metrics["accuracy"] > 0.9
    assert iris_bundle.metrics["confusion_matrix"]["labels"] == iris_bundle.classes
    assert set(iris_bundle.versions) >= {"scikit-learn", "numpy", "pandas", "python"}


def test_bundle_round_trip_predicts_the_same(iris_bundle):
    loaded = bundles.loads(bundles.dumps(iris_bundle, SECRET), SECRET)
    frame = records_to_frame(
        [
            {
                "sepal length (cm)": 5.1,
                "sepal width (cm)": 3.5,
                "petal length (cm)": 1.4,
                "petal width (cm)": 0.2,
            }
        ],
        loaded.schema,
    )
    assert sklearn_answer(loaded, frame)["predictions"] == ["setosa"]
    assert sklearn_answer(loaded, frame) == sklearn_answer(iris_bundle, frame)


def test_tampered_bundle_is_refused_before_unpickling(iris_bundle):
    data = bytearray(bundles.dumps(iris_bundle, SECRET))
    data[-10] ^= 0xFF
    with pytest.raises(BundleError, match="signature"):
        bundles.loads(bytes(data), SECRET)


def test_foreign_secret_and_bare_pickle_are_refused(iris_bundle):
    with pytest.raises(BundleError, match="signature"):
        bundles.loads(bundles.dumps(iris_bundle, "x" * 64), SECRET)
    import pickle

    with pytest.raises(BundleError, match="not a model bundle"):
        bundles.loads(pickle.dumps({"a": 1}), SECRET)


def test_mixed_types_missing_values_and_unseen_categories():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=200),
            "colour": rng.choice(["red", "blue", None], size=200),
            "label": rng.choice(["yes", "no"], size=200),
        }
    )
    frame.loc[::7, "size"] = np.nan
    bundle = training.train(frame, "label", "RandomForestClassifier", {"n_estimators": 10}).bundle
    assert bundle.schema[1] == {"name": "colour", "type": "string", "categories": ["blue", "red"]}
    records = [{"size": None, "colour": "green"}, {"size": 1.0, "colour": None}]
    result = sklearn_answer(bundle, records_to_frame(records, bundle.schema), probabilities=True)
    assert all(label in ("yes", "no") for label in result["predictions"])
    assert all(abs(sum(p.values()) - 1) < 1e-9 for p in result["probabilities"])


def test_regression_target_gives_regression_metrics():
    rng = np.random.default_rng(1)
    x = rng.normal(size=300)
    frame = pd.DataFrame({"x": x, "y": 3 * x + rng.normal(scale=0.1, size=300)})
    bundle = training.train(frame, "y", "Ridge", {}).bundle
    assert bundle.task == "regression"
    assert bundle.metrics["r2"] > 0.95 and {"rmse", "mae"} <= set(bundle.metrics)
    result = sklearn_answer(bundle, records_to_frame([{"x": 1.0}], bundle.schema))
    assert result["predictions"][0] == pytest.approx(3.0, abs=0.3)


def test_unknown_estimator_and_bad_params_are_named():
    with pytest.raises(estimators.EstimatorError, match="unknown estimator 'Magic'"):
        estimators.make_estimator("Magic", {})
    with pytest.raises(estimators.EstimatorError, match="unknown parameter 'depth'"):
        estimators.make_estimator("RandomForestClassifier", {"depth": 3})
    with pytest.raises(estimators.EstimatorError, match="'C' parameter"):
        estimators.make_estimator("LogisticRegression", {"C": -1})


def test_estimator_list_is_broad_and_described():
    described = estimators.describe_all()
    names = {entry["name"] for entry in described}
    assert {
        "HistGradientBoostingClassifier",
        "SVC",
        "KNeighborsRegressor",
        "GaussianNB",
        "RandomForestRegressor",
        "LogisticRegression",
    } <= names
    forest = next(entry for entry in described if entry["name"] == "RandomForestClassifier")
    assert forest["params"]["n_estimators"] == 100 and forest["task"] == "classification"
    assert forest["param_types"]["max_depth"] == "integer|null"
    assert forest["param_types"]["bootstrap"] == "boolean"


def test_xgboost_and_lightgbm_take_their_listed_parameters_with_real_defaults():
    model = estimators.make_estimator("XGBRegressor", {"max_depth": 3})
    assert model.get_params()["max_depth"] == 3 and model.get_params()["n_jobs"] == 1
    assert model.get_params()["n_estimators"] == 100
    lgbm = estimators.make_estimator("LGBMClassifier", {})
    assert lgbm.get_params()["verbose"] == -1
    with pytest.raises(estimators.EstimatorError) as caught:
        estimators.make_estimator("XGBClassifier", {"learning_rate": 0})
    assert caught.value.message == (
        "The 'learning_rate' parameter of XGBClassifier must be a float in the range "
        "(0.0, inf). Got 0 instead."
    )
    with pytest.raises(estimators.EstimatorError, match="unknown parameter 'booster' for"):
        estimators.make_estimator("XGBClassifier", {"booster": "dart"})
    described = {entry["name"]: entry for entry in estimators.describe_all()}
    assert described["LGBMRegressor"]["params"]["num_leaves"] == 31
    assert described["LGBMRegressor"]["param_types"]["random_state"] == "integer|null"
    assert described["XGBClassifier"]["param_types"]["tree_method"] == "string"


def test_xgboost_and_lightgbm_models_train_and_record_their_library_versions():
    frame = pd.DataFrame(
        {"x": [float(i) for i in range(40)], "c": ["a", "b"] * 20, "y": ["lo"] * 20 + ["hi"] * 20}
    )
    for name, library in [("XGBClassifier", "xgboost"), ("LGBMClassifier", "lightgbm")]:
        fitted = training.train(frame, "y", name, {"n_estimators": 5})
        assert library in fitted.bundle.versions
        assert fitted.bundle.metrics["train_rows"] == 30 and fitted.bundle.classes == ["hi", "lo"]
