"""Training requests: the body's shape (400), then the target against the data set's profile."""

from typing import Any

import pytest

from mlservice.errors import BadRequest, Invalid
from mlservice.store.bundles import Task
from mlservice.store.records import ColumnProfile, DatasetRecord
from mlservice.training import allowed_estimators
from mlservice.training.request import check_against_dataset, parse_training_request


def column(name: str, dtype: str, distinct: int, lower_bound: bool = False) -> ColumnProfile:
    return {
        "name": name,
        "dtype": dtype,
        "missing": 0,
        "distinct": distinct,
        "distinct_is_lower_bound": lower_bound,
    }


def dataset(target: ColumnProfile, rows: int = 400) -> DatasetRecord:
    return {
        "id": "d1",
        "name": "d1",
        "owner": "alice",
        "format": "csv",
        "size_bytes": 1000,
        "rows": rows,
        "columns": [column("age", "integer", 60), target],
        "string_columns": [],
        "upload_seconds": 0.01,
    }


def request(estimator: str = "RandomForestClassifier", **extra: Any):
    return parse_training_request(
        {"dataset_id": "d1" * 16, "target": "y", "estimator": estimator} | extra
    )


def refusal(training_request, data: DatasetRecord) -> str:
    with pytest.raises(Invalid) as caught:
        check_against_dataset(training_request, data)
    assert caught.value.status == 422
    return caught.value.message


def test_a_classifier_on_a_continuous_integer_target_is_refused_with_the_way_out():
    message = refusal(request(), dataset(column("y", "integer", 354)))
    assert message == (
        "target 'y' looks continuous: it is integer with 354 distinct values in 400 rows, "
        "and RandomForestClassifier is a classifier, which would take each value as a class; "
        "use a regressor such as RandomForestRegressor, or, if these values are classes, "
        'send "target_is_categorical": true (at most 1000 classes)'
    )


def test_a_float_target_beyond_the_profile_count_says_more_than():
    message = refusal(
        request("LogisticRegression"),
        dataset(column("y", "float", 10_000, lower_bound=True), rows=50_000),
    )
    assert "it is float with more than 10000 distinct values in 50000 rows" in message
    assert "use a regressor such as Ridge" in message


def test_fifty_numeric_classes_are_still_classes():
    check_against_dataset(request(), dataset(column("y", "integer", 50)))
    check_against_dataset(request(), dataset(column("y", "float", 50)))


def test_51_numeric_values_look_continuous():
    assert "looks continuous" in refusal(request(), dataset(column("y", "integer", 51)))


def test_target_is_categorical_overrides_up_to_the_class_limit():
    overridden = request(target_is_categorical=True)
    check_against_dataset(overridden, dataset(column("y", "integer", 354)))
    check_against_dataset(overridden, dataset(column("y", "float", 1000), rows=5000))
    message = refusal(overridden, dataset(column("y", "integer", 1001), rows=5000))
    assert message == (
        "target 'y' has more than 1000 distinct values: "
        "RandomForestClassifier is a classifier; use a regressor"
    )
    message = refusal(overridden, dataset(column("y", "integer", 10_000, lower_bound=True)))
    assert "more than 1000 distinct values" in message


def test_string_targets_keep_the_class_limit():
    check_against_dataset(request(), dataset(column("y", "string", 1000), rows=5000))
    message = refusal(request(), dataset(column("y", "string", 1001), rows=5000))
    assert message == (
        "target 'y' has more than 1000 distinct values: "
        "RandomForestClassifier is a classifier; use a regressor"
    )


def test_a_regressor_on_a_continuous_target_is_accepted():
    check_against_dataset(request("RandomForestRegressor"), dataset(column("y", "float", 354)))


def test_target_is_categorical_defaults_to_false_and_must_be_a_boolean():
    assert request().target_is_categorical is False
    assert request(target_is_categorical=True).target_is_categorical is True
    for wrong in ("true", 1, None):
        with pytest.raises(BadRequest) as caught:
            request(target_is_categorical=wrong)
        assert caught.value.status == 400
        assert caught.value.message == "'target_is_categorical' must be true or false"


def test_every_classifier_suggests_an_allowed_regressor():
    classifiers = [
        name
        for name, (_, task) in allowed_estimators.ESTIMATORS.items()
        if task == Task.CLASSIFICATION
    ]
    assert len(classifiers) == 23
    for name in classifiers:
        suggestion = allowed_estimators.regressor_for(name)
        assert allowed_estimators.task_of(suggestion) == Task.REGRESSION, name
    assert allowed_estimators.regressor_for("RandomForestClassifier") == "RandomForestRegressor"
    assert allowed_estimators.regressor_for("XGBClassifier") == "XGBRegressor"
    assert allowed_estimators.regressor_for("LogisticRegression") == "Ridge"
    assert allowed_estimators.regressor_for("SVC") == "SVR"
