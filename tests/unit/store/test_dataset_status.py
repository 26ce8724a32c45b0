"""A data set's status: what the API shows before and after profiling, and who may use it."""

import hashlib

import pytest

from mlservice.errors import Conflict
from mlservice.store.dataset_files import profiled, public, require_ready, status_of

PROFILED = {
    "id": "d1",
    "name": "table.csv",
    "owner": "ann",
    "format": "csv",
    "size_bytes": 12,
    "rows": 2,
    "columns": [],
    "string_columns": ["b"],
    "upload_seconds": 0.1,
}


def test_a_record_from_before_statuses_is_ready_and_shown_so():
    assert status_of(PROFILED) == "ready"
    require_ready(PROFILED)
    shown = public(PROFILED)
    assert shown["status"] == "ready" and shown["delimiter"] == ","
    assert "string_columns" not in shown


def test_a_data_set_being_profiled_shows_no_profile_and_cannot_be_used():
    record = {key: value for key, value in PROFILED.items() if key not in ("rows", "columns")}
    record |= {"status": "profiling", "task_id": "t1"}
    del record["string_columns"]
    assert public(record) == {
        "id": "d1",
        "name": "table.csv",
        "owner": "ann",
        "format": "csv",
        "size_bytes": 12,
        "upload_seconds": 0.1,
        "status": "profiling",
        "task_id": "t1",
    }
    with pytest.raises(Conflict) as refused:
        require_ready(record)
    assert refused.value.message == (
        "data set 'd1' is still being profiled; retry when its status is ready"
    )


def test_a_failed_data_set_says_why():
    record = {"id": "d2", "status": "failed", "error": "ragged rows: ..."}
    with pytest.raises(Conflict) as refused:
        require_ready(record)
    assert refused.value.message == "data set 'd2' failed: ragged rows: ..."
    assert refused.value.status == 409


def test_profiled_fields_are_the_ready_record_of_a_file(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"a;b\n1;x\n2;\n")
    fields = profiled(path, "csv")
    assert fields == {
        "status": "ready",
        "rows": 2,
        "columns": [
            {
                "name": "a",
                "dtype": "integer",
                "missing": 0,
                "distinct": 2,
                "distinct_is_lower_bound": False,
                "role": "numeric",
                "role_evidence": {
                    "distinct_ratio": 1.0,
                    "examples": ["1", "2"],
                    "reason": "its values are numbers",
                },
            },
            {
                "name": "b",
                "dtype": "string",
                "missing": 1,
                "distinct": 1,
                "distinct_is_lower_bound": False,
                "categories_sample": ["x"],
                "role": "constant",
                "role_evidence": {
                    "distinct_ratio": 1.0,
                    "examples": ["x"],
                    "reason": "it has 1 distinct value(s)",
                },
            },
        ],
        "string_columns": [],
        "formula_cells": 0,
        "delimiter": ";",
        "decimal": ".",
        "sha256": hashlib.sha256(b"a;b\n1;x\n2;\n").hexdigest(),  # what a model's lineage names
    }
