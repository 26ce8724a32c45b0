"""Prediction inputs from files and outputs as CSV, without a service."""

import io
import math

import pytest

from mlservice_client import tables


def test_csv_cells_are_typed_by_the_schema_or_guessed():
    text = io.StringIO("code;price;note\n007;1.5;\n42;NA;x\n")
    batches = list(tables.csv_batches(text, {"code": "string", "price": "number"}, 10))
    assert batches == [
        [{"code": "007", "price": 1.5, "note": None}, {"code": "42", "price": None, "note": "x"}]
    ]
    guessed = list(tables.csv_batches(io.StringIO("a,b\n1,2.5\n"), None, 10))
    assert guessed == [[{"a": 1, "b": 2.5}]]


def test_csv_errors_name_the_line():
    with pytest.raises(tables.InputError, match="CSV line 3 has 1 fields; the header has 2"):
        list(tables.csv_batches(io.StringIO("a,b\n1,2\n3\n"), None, 10))
    with pytest.raises(tables.InputError, match="CSV line 2: 'x' is not a number"):
        list(tables.csv_batches(io.StringIO("a\nx\n"), {"a": "number"}, 10))


def test_native_csv_batches_keep_the_header_and_every_row(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('a;b\n1;"x;y"\n2;z\n3;w\n')
    bodies = list(tables.native_batches(path, "csv", 2))
    assert bodies == [b"a,b\n1,x;y\n2,z\n", b"a,b\n3,w\n"]


def test_json_shapes_and_batches(tmp_path):
    path = tmp_path / "in.json"
    path.write_text('{"instances": [{"a": 1}, {"a": 2}, {"a": 3}]}')
    assert list(tables.file_batches(path, "json", None, 2)) == [[{"a": 1}, {"a": 2}], [{"a": 3}]]
    with pytest.raises(tables.InputError, match="must be an object, a list of objects"):
        tables.json_records([1, 2])


def test_format_from_the_extension():
    assert tables.format_of("x.PQ") == "parquet" and tables.format_of("x.txt", "csv") == "csv"
    with pytest.raises(tables.InputError, match="cannot tell the format of 'x.txt'"):
        tables.format_of("x.txt")


def test_nan_is_sent_as_null():
    assert tables.clean(math.nan) is None and tables.clean(1.5) == 1.5


def test_answers_merge_and_write_as_csv():
    answers = [
        {"predictions": ["a"], "probabilities": [{"a": 0.9, "b": 0.1}]},
        {"predictions": ["b"], "probabilities": [{"a": 0.2, "b": 0.8}]},
    ]
    out = io.StringIO()
    assert tables.write_csv(answers, out) == 2
    assert out.getvalue() == "prediction,probability_a,probability_b\na,0.9,0.1\nb,0.2,0.8\n"
    assert tables.merge(answers) == {
        "predictions": ["a", "b"],
        "probabilities": [{"a": 0.9, "b": 0.1}, {"a": 0.2, "b": 0.8}],
    }
