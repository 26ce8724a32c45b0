"""Prediction input: the three body shapes and errors that name the column."""

import json
import math

import numpy as np
import pytest

from mlservice.errors import ServiceError
from mlservice.serving.inputs import (
    ExtraColumns,
    json_to_columns,
    parse_records,
    records_to_columns,
    typed_records_to_columns,
)
from tests.reference import records_to_frame

SCHEMA = [
    {"name": "age", "type": "number"},
    {"name": "city", "type": "string", "categories": ["Lyon", "Paris"]},
]


def assert_same_columns(typed, plain) -> None:
    """The typed reading's arrays are the worded reading's: names, dtypes, shapes, values."""
    assert typed is not None and list(typed) == list(plain)
    for name, values in plain.items():
        assert typed[name].dtype == values.dtype and typed[name].shape == values.shape
        assert [repr(value) for value in typed[name]] == [repr(value) for value in values]


@pytest.mark.parametrize(
    "body",
    [
        {"age": 3, "city": "Paris"},
        [{"age": 3, "city": "Paris"}],
        {"instances": [{"age": 3, "city": "Paris"}]},
    ],
)
def test_three_shapes_give_the_same_records(body):
    assert parse_records(body) == [{"age": 3, "city": "Paris"}]


@pytest.mark.parametrize(
    "body, status",
    [
        ("text", 400),
        (3, 400),
        ([], 400),
        ([1, 2], 400),
        ({"instances": "x"}, 400),
    ],
)
def test_bad_shapes_are_400(body, status):
    with pytest.raises(ServiceError) as caught:
        parse_records(body)
    assert caught.value.status == status


def test_missing_column_is_named():
    with pytest.raises(ServiceError, match="'city'") as caught:
        records_to_frame([{"age": 3}], SCHEMA)
    assert caught.value.status == 422


def test_unknown_column_is_ignored_and_named_or_refused():
    records = [{"age": 3, "city": "Lyon", "colour": "red"}, {"age": 4, "city": "Nice"}]
    extras = ExtraColumns()
    columns = records_to_columns(records, SCHEMA, extras)
    assert list(columns) == ["age", "city"] and extras.ignored == ["colour"]
    with pytest.raises(ServiceError, match="'colour'") as caught:
        records_to_columns(records, SCHEMA, ExtraColumns(refuse=True))
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "record, column",
    [
        ({"age": "three", "city": "Lyon"}, "age"),
        ({"age": True, "city": "Lyon"}, "age"),
        ({"age": 3, "city": 7}, "city"),
        ({"age": 3, "city": ["Lyon"]}, "city"),
    ],
)
def test_wrong_type_names_the_column(record, column):
    with pytest.raises(ServiceError, match=f"column '{column}'") as caught:
        records_to_frame([record], SCHEMA)
    assert caught.value.status == 422


def test_nulls_become_missing_values():
    frame = records_to_frame([{"age": None, "city": None}, {"age": 2, "city": "Lyon"}], SCHEMA)
    assert math.isnan(frame["age"][0]) and frame["age"][1] == 2.0
    assert frame["city"][0] is np.nan or frame["city"].isna()[0]
    assert list(frame.columns) == ["age", "city"]


@pytest.mark.parametrize(
    "body",
    [
        {"age": 3, "city": "Paris"},
        {"age": None, "city": None},
        [{"age": 3, "city": "Paris"}, {"age": 1.5, "city": None}, {"city": "Lyon", "age": None}],
    ],
)
def test_the_typed_reading_gives_the_same_arrays(body):
    raw = json.dumps(body).encode()
    typed = typed_records_to_columns(raw, SCHEMA)
    plain = json_to_columns(json.loads(raw), SCHEMA)
    assert_same_columns(typed, plain)


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [{"age": 3, "city": "Paris"}]}',  # a wrapper
        b"[]",
        b'[{"age": 3}]',  # a column missing
        b'[{"age": 3, "city": "Paris", "x": 1}]',  # one unknown
        b'[{"age": true, "city": "Paris"}]',
        b'[{"age": "3", "city": "Paris"}]',
        b'[{"age": NaN, "city": "Paris"}]',
        b'[{"age": 1e999, "city": "Paris"}]',
        b"not json",
    ],
)
def test_what_the_typed_reading_refuses_is_left_to_the_worded_one(body):
    assert typed_records_to_columns(body, SCHEMA) is None


@pytest.mark.parametrize(
    "split",
    [
        {"columns": ["age", "city"], "data": [[3, "Paris"], [None, None], [1.5, "Lyon"]]},
        {"columns": ["age", "city"], "data": [[3, "Paris"]], "index": [7]},
    ],
)
def test_the_typed_reading_of_a_split_gives_the_same_arrays(split):
    raw = json.dumps({"dataframe_split": split}).encode()
    typed = typed_records_to_columns(raw, SCHEMA)
    plain = json_to_columns(json.loads(raw), SCHEMA)
    assert_same_columns(typed, plain)


@pytest.mark.parametrize(
    "split",
    [
        {"columns": ["city", "age"], "data": [["Paris", 3]]},  # another order: the worded path
        {"columns": ["age", "city"], "data": []},
        {"columns": ["age", "city"], "data": [[3]]},
        {"columns": ["age", "city"], "data": [[3, "Paris"]], "params": {}},
    ],
)
def test_what_the_typed_reading_of_a_split_refuses_is_left_to_the_worded_one(split):
    assert typed_records_to_columns(json.dumps({"dataframe_split": split}).encode(), SCHEMA) is None


@pytest.mark.parametrize("name", ['the "quoted" one', "back\\slash", "tab\there"])
def test_a_column_name_msgspec_cannot_rename_to_takes_the_worded_path(name):
    schema = [{"name": name, "type": "number"}, {"name": "city", "type": "string"}]
    body = [{name: 4, "city": "Paris"}]
    assert typed_records_to_columns(json.dumps(body).encode(), schema) is None
    columns = json_to_columns(body, schema)
    assert columns[name].tolist() == [4.0] and columns["city"].tolist() == ["Paris"]
