"""Prediction input: the three body shapes and errors that name the column."""

import math

import numpy as np
import pytest

from mlservice.errors import ServiceError
from mlservice.serving.inputs import ExtraColumns, parse_records, records_to_columns
from tests.reference import records_to_frame

SCHEMA = [
    {"name": "age", "type": "number"},
    {"name": "city", "type": "string", "categories": ["Lyon", "Paris"]},
]


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
