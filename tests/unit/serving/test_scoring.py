"""Batch scoring's pure parts: the request, its checks against a profile, chunks, output."""

import json

import numpy as np
import pyarrow as pa
import pytest

from mlservice.errors import BadRequest, Invalid
from mlservice.security import Identity
from mlservice.serving import outputs, scoring
from mlservice.serving.scoring import ScoringRequest
from mlservice.store.bundles import ModelBundle
from mlservice.store.dataset_files import read_columns

DATASET_ID = "a" * 32
SCHEMA = [
    {"name": "age", "type": "number"},
    {"name": "city", "type": "string", "categories": ["Lyon", "Paris"]},
]


def profile(file_format: str = "parquet", **dtypes: str) -> dict:
    """A data set record whose columns have the given dtypes."""
    columns = {"id": "string", "age": "float", "city": "string"} | dtypes
    return {
        "id": DATASET_ID,
        "format": file_format,
        "string_columns": [],
        "columns": [{"name": name, "dtype": dtype} for name, dtype in columns.items()],
    }


def bundle(task: str = "classification", classes=("basic", "premium")) -> ModelBundle:
    class Classifier:
        def predict_proba(self, frame):  # pragma: no cover - never called
            raise AssertionError

    return ModelBundle(
        pipeline=Classifier() if task == "classification" else object(),
        task=task,
        estimator="Forest" if task == "classification" else "Ridge",
        params={},
        schema=SCHEMA,
        target="plan",
        classes=list(classes) if task == "classification" else None,
    )


def test_a_minimal_body_gets_the_defaults_and_survives_celery_json():
    request = scoring.parse_scoring_request({"dataset_id": DATASET_ID})
    assert request == ScoringRequest(DATASET_ID, "parquet", (), False, None)
    full = scoring.parse_scoring_request(
        {
            "dataset_id": DATASET_ID,
            "format": "csv",
            "keep_columns": ["id", "age"],
            "probabilities": True,
            "name": "scored",
        }
    )
    assert full.keep_columns == ("id", "age")
    assert ScoringRequest.from_json(full.as_json()) == full


def test_a_job_travels_to_the_worker_with_its_owners_account_id():
    """The new data set is the account's (its id), shown under the user's name."""
    request = scoring.parse_scoring_request({"dataset_id": DATASET_ID, "format": "csv"})
    owner = Identity("ann", "user", "0123abcd", "a" * 32)
    job = scoring.ScoringJob("m" * 32, "o" * 32, owner, request)
    args = json.loads(json.dumps(job.task_args()))  # as Celery sends them
    assert args[2] == {"account_id": "a" * 32, "username": "ann"}
    back = scoring.ScoringJob.from_task_args(*args)
    assert (back.model_id, back.output_id, back.request) == (job.model_id, job.output_id, request)
    assert (back.owner.username, back.owner_id) == ("ann", "a" * 32)


@pytest.mark.parametrize(
    "body, message",
    [
        ([], "send a JSON object"),
        ({}, "'dataset_id' is required"),
        ({"dataset_id": "../etc"}, "'dataset_id' must be a data set id (32 hexadecimal digits)"),
        ({"dataset_id": 7}, "'dataset_id' must be a data set id"),
        ({"format": "json"}, "'format' must be one of parquet, csv"),
        ({"keep_columns": "id"}, "'keep_columns' must be a list of column names"),
        ({"keep_columns": ["id", ""]}, "'keep_columns' must be a list of column names"),
        ({"keep_columns": ["id", "id"]}, "'keep_columns' names a column twice"),
        ({"probabilities": 1}, "'probabilities' must be true or false"),
        ({"name": ""}, "'name' must be a string of 1 to 200 characters"),
        ({"colour": "red"}, "unknown field(s) 'colour'; known: dataset_id, format, keep_columns"),
    ],
)
def test_malformed_bodies_are_named(body, message):
    if isinstance(body, dict) and body != {} and "dataset_id" not in body:
        body = {"dataset_id": DATASET_ID} | body
    with pytest.raises(BadRequest) as refused:
        scoring.parse_scoring_request(body)
    assert message in refused.value.message


def test_a_data_set_that_fits_passes():
    kept = ScoringRequest(DATASET_ID, keep_columns=("id",))
    assert scoring.check_request(kept, profile(), SCHEMA) == []
    # A CSV column is read as text for a text input, whatever it looked like at upload.
    scoring.check_request(ScoringRequest(DATASET_ID), profile("csv", city="integer"), SCHEMA)
    scoring.check_request(ScoringRequest(DATASET_ID), profile(age="integer"), SCHEMA)


def test_columns_the_model_does_not_take_are_named_or_refused():
    ignored = scoring.check_request(ScoringRequest(DATASET_ID), profile(), SCHEMA)
    assert ignored == ["id"]
    strict = ScoringRequest(DATASET_ID, extra_columns="refuse")
    with pytest.raises(BadRequest) as refused:
        scoring.check_request(strict, profile(), SCHEMA)
    assert refused.value.message == (
        f"data set {DATASET_ID!r} has column(s) 'id' the model does not take (extra_columns: "
        "refuse); keep them with keep_columns, or leave out extra_columns to have them ignored"
    )


@pytest.mark.parametrize(
    "request_, record, message",
    [
        (
            ScoringRequest(DATASET_ID, keep_columns=("id", "colour")),
            profile(),
            f"keep_columns 'colour' are not columns of data set '{DATASET_ID}'",
        ),
        (
            ScoringRequest(DATASET_ID, keep_columns=("prediction",)),
            profile(prediction="float"),
            "keep_columns 'prediction' would clash",
        ),
        (
            ScoringRequest(DATASET_ID),
            {**profile(), "columns": [{"name": "age", "dtype": "float"}]},
            f"data set '{DATASET_ID}' lacks the model's input column(s) 'city'; "
            "the model expects 'age', 'city'",
        ),
        (
            ScoringRequest(DATASET_ID),
            profile("csv", age="string"),
            f"column 'age' of data set '{DATASET_ID}' is string; the model expects numbers",
        ),
        (
            ScoringRequest(DATASET_ID),
            profile(age="boolean"),
            "is boolean; the model expects numbers",
        ),
        (
            ScoringRequest(DATASET_ID),
            profile(city="integer"),
            f"column 'city' of data set '{DATASET_ID}' is integer; the model expects text",
        ),
    ],
)
def test_data_sets_that_do_not_fit_are_422(request_, record, message):
    with pytest.raises(Invalid) as refused:
        scoring.check_request(request_, record, SCHEMA)
    assert message in refused.value.message


def test_probabilities_only_from_a_classifier():
    outputs.check_probabilities(bundle(), True)
    outputs.check_probabilities(bundle("regression"), False)
    with pytest.raises(BadRequest, match="Ridge is a regressor: it gives no probabilities"):
        outputs.check_probabilities(bundle("regression"), True)


def test_rechunk_gives_exact_chunks_whatever_the_batches():
    sizes = [3, 0, 5, 1, 7]
    batches, start = [], 0
    for size in sizes:
        batches.append(pa.record_batch({"n": list(range(start, start + size))}))
        start += size
    chunks = list(scoring.rechunk(batches, 4))
    assert [chunk.num_rows for chunk in chunks] == [4, 4, 4, 4]
    assert [value for chunk in chunks for value in chunk.column("n").to_pylist()] == list(range(16))
    assert [c.num_rows for c in scoring.rechunk(batches, 5)] == [5, 5, 5, 1]
    assert list(scoring.rechunk([], 5)) == []


def test_output_columns_kept_first_then_prediction_then_probabilities():
    classifier = bundle()
    kept = pa.table({"id": ["x", "y"], "age": [1.0, None]})
    raw = np.array([1, 0])  # class indices, as the predictor gives them
    proba = np.array([[0.25, 0.75], [1.0, 0.0]])
    table = outputs.answer_table(classifier, raw, proba, kept)
    assert table.column_names == [
        "id",
        "age",
        "prediction",
        "probability_basic",
        "probability_premium",
    ]
    assert table.to_pydict() == {
        "id": ["x", "y"],
        "age": [1.0, None],
        "prediction": ["premium", "basic"],
        "probability_basic": [0.25, 1.0],
        "probability_premium": [0.75, 0.0],
    }
    without = outputs.answer_table(classifier, raw, None, kept)
    assert without.column_names == ["id", "age", "prediction"]
    assert outputs.prediction_type(bundle(classes=(0, 1))) == pa.int64()
    assert outputs.prediction_type(bundle("regression")) == pa.float64()
    numbers = outputs.answer_table(bundle(classes=(0, 1)), raw, proba)
    assert numbers.to_pydict() == {
        "prediction": [1, 0],
        "probability_0": [0.25, 1.0],
        "probability_1": [0.75, 0.0],
    }


def test_csv_columns_are_read_as_the_model_takes_them(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("code;age;other\n007;41;x\n012;;y\n")
    record = {"format": "csv", "string_columns": [], "delimiter": ";"}
    forced = {"code": pa.string(), "age": pa.float64()}
    (batch,) = read_columns(path, record, ["code", "age"], forced, 10)
    assert batch.schema.names == ["code", "age"]
    assert batch.to_pydict() == {"code": ["007", "012"], "age": [41.0, None]}


TEXT_SCHEMA = [
    {"name": "age", "type": "number"},
    {"name": "city", "type": "string", "categories": ["a", "b"]},
]


def test_chunks_are_cut_where_their_rows_would_pass_the_byte_limit():
    """Each row becomes 8 x 3 bytes plus its text: 10 rows of 100 bytes of text, 124 each."""
    city = pa.DictionaryArray.from_arrays(pa.array([0] * 10, pa.int32()), pa.array(["x" * 100]))
    chunk = pa.table({"age": pa.array([1.0] * 10), "city": city})
    parts = list(scoring.within_bytes([chunk], TEXT_SCHEMA, 400))
    assert [part.num_rows for part in parts] == [3, 3, 3, 1]
    assert pa.concat_tables(parts).equals(chunk)
    assert [part.num_rows for part in scoring.within_bytes([chunk], TEXT_SCHEMA, 1240)] == [10]


def test_a_row_over_the_byte_limit_fails_the_job_naming_it():
    city = pa.array(["a", "x" * 2 * 1024**2])
    chunk = pa.table({"age": pa.array([1.0, 2.0]), "city": city})
    parts = scoring.within_bytes([chunk, chunk], TEXT_SCHEMA, 1024**2)
    assert next(parts).num_rows == 1
    with pytest.raises(Invalid) as refused:
        next(parts)
    assert refused.value.message == (
        "row 1 becomes 2.0 MiB in memory, more than 1.0 MiB ([limits] max_decoded_mb)"
    )
