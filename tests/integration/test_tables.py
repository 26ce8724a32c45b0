"""Real tables on the real stack: column roles, dates, ids, free text, constants, warnings.

Each table is made here, small, with the trait it tests; cars is vega_datasets'
(installed by the test extra), the table the issue was found on.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import eventually, train, upload, wait_ready

pytestmark = pytest.mark.integration

MLS = str(Path(sys.executable).with_name("mls"))
WORDS = ["good", "bad", "fast", "slow", "red", "blue", "car", "house", "cheap", "dear"]


def _profile(client, token: str, dataset_id: str) -> dict[str, dict]:
    record = client.get(f"/resource/datasets/{dataset_id}", token).json()
    assert record["status"] == "ready", record
    return {column["name"]: column for column in record["columns"]}


def _ready(client, token: str, body: dict) -> dict:
    """The trained model's record once its engine is decided (compiled or not)."""
    model_id = train(client, token, body)["model_id"]

    def settled() -> dict:
        record = wait_ready(client, token, model_id)
        assert record["status"] == "ready", record
        assert not record["engine"]["reason"].startswith("compiling"), record
        return record

    return eventually(settled, timeout=180, message="still compiling", retry_on=AssertionError)


@pytest.fixture(scope="module")
def mixed() -> pd.DataFrame:
    """An id, a code, dates (day first), free text, a constant, a category and a target
    that follows the date and the text."""
    rng = np.random.default_rng(7)
    rows = 120
    days = pd.date_range("2015-01-01", periods=rows, freq="17D")
    notes = [" ".join(rng.choice(WORDS, size=6)) for _ in range(rows)]
    colour = rng.choice(["red", "green", "blue"], size=rows)
    good = np.array([note.count("good") for note in notes])
    return pd.DataFrame(
        {
            "row_id": np.arange(1, rows + 1),
            "code": [f"K-{index:05d}" for index in rng.permutation(rows)],
            "when": days.strftime("%d/%m/%Y"),
            "note": notes,
            "site": "north",
            "colour": colour,
            "price": (days.year - 2015) * 10.0 + good * 5.0 + rng.normal(0, 1, rows),
        }
    )


@pytest.fixture(scope="module")
def mixed_id(client, admin_token, mixed) -> str:
    return upload(client, admin_token, mixed)


def test_profile_gives_each_column_a_role_with_its_evidence(client, admin_token, mixed, mixed_id):
    columns = _profile(client, admin_token, mixed_id)
    roles = {name: column["role"] for name, column in columns.items()}
    assert roles == {
        "row_id": "id",
        "code": "id",
        "when": "datetime",
        "note": "text",
        "site": "constant",
        "colour": "categorical",
        "price": "numeric",
    }
    when = columns["when"]["role_evidence"]
    assert when["parse_rate"] == 1.0 and when["distinct_ratio"] == 1.0
    assert when["examples"] == sorted(mixed["when"])[:5]
    assert when["reason"] == "100% of its values parse as dates"
    assert columns["note"]["role_evidence"]["mean_words"] == 6.0
    assert columns["code"]["role_evidence"]["reason"] == (
        "it is unique or nearly so per row (120 distinct values in 120 non-missing rows)"
    )
    assert columns["site"]["role_evidence"]["reason"] == "it has 1 distinct value(s)"


def test_defaults_leave_ids_and_constants_out_and_use_dates_and_text(client, admin_token, mixed_id):
    record = _ready(
        client,
        admin_token,
        {"dataset_id": mixed_id, "target": "price", "estimator": "Ridge"},
    )
    schema = {column["name"]: column for column in record["input_schema"]}
    assert list(schema) == ["when", "note", "colour"]
    assert schema["when"] == {"name": "when", "type": "datetime", "format": "%d/%m/%Y"}
    assert schema["note"] == {"name": "note", "type": "string", "role": "text"}
    left_out = [w for w in record["warnings"] if w["kind"] == "column_left_out"]
    assert [w["column"] for w in left_out] == ["row_id", "code", "site"]
    assert left_out[2]["message"] == (
        "column 'site' is left out: it is constant (it has 1 distinct value(s)); to use it, send "
        '"columns": {"site": "categorical"} (or "numeric", "datetime", "text") with the '
        "training request"
    )
    assert record["engine"]["name"] == "scikit-learn"
    assert record["engine"]["reason"].startswith("not compiled: column 'when' is a date column")
    assert record["metrics"]["r2"] > 0.9  # the date and the text carry the price
    assert set(record["metrics"]["training"]) == {"r2", "rmse", "mae"}

    # Prediction takes the raw values: dates in the training format, ISO, or a year.
    model = record["id"]
    rows = [
        {"colour": "red", "when": when, "note": "good good good car house red"}
        for when in ("01/01/2020", "2020-01-01", 2020, "2020")
    ]
    answer = client.post(f"/resource/models/{model}/predict", admin_token, json=rows)
    assert answer.status_code == 200, answer.text
    values = answer.json()["predictions"]
    assert len(set(values)) == 1, values
    bad = client.post(
        f"/resource/models/{model}/predict",
        admin_token,
        json=[{"colour": "red", "when": "someday", "note": "good"}],
    )
    assert bad.status_code == 422
    assert bad.json()["status"] == (
        "column 'when' expects dates; row 0 has 'someday', which is neither a date "
        '(e.g. "1971-01-31") nor a year (e.g. 1971)'
    )
    csv = "colour,when,note\nred,01/01/2020,good good good car house red\nblue,2020,\n"
    answer = client.post(
        f"/resource/models/{model}/predict",
        admin_token,
        data=csv.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0] == values[0]


def test_a_request_overrides_roles_and_refuses_unknown_ones(client, admin_token, mixed_id):
    body = {"dataset_id": mixed_id, "target": "price", "estimator": "Ridge"}
    refused = client.post(
        "/resource/models", admin_token, json=body | {"columns": {"note": "words"}}
    )
    assert refused.status_code == 400
    assert refused.json()["status"] == (
        "'columns' gives column 'note' the role 'words'; the roles are numeric, categorical, "
        "datetime, text, ignore"
    )
    refused = client.post(
        "/resource/models", admin_token, json=body | {"columns": {"nope": "ignore"}}
    )
    assert refused.status_code == 400
    assert refused.json()["status"].startswith(
        "'columns' names 'nope', which is not a column of the data set; columns: row_id, code"
    )
    record = _ready(
        client,
        admin_token,
        body | {"columns": {"note": "ignore", "when": "categorical", "site": "categorical"}},
    )
    schema = {column["name"]: column for column in record["input_schema"]}
    assert list(schema) == ["when", "site", "colour"]
    assert schema["when"]["type"] == "string" and schema["site"]["categories"] == ["north"]
    assert record["columns"] == {"note": "ignore", "when": "categorical", "site": "categorical"}
    ignored = [w for w in record["warnings"] if w.get("column") == "note"]
    assert ignored == [
        {
            "kind": "column_left_out",
            "message": (
                "column 'note' is left out: it is ignored (the training request's \"columns\" "
                "says so)"
            ),
            "column": "note",
        }
    ]
    grouped = [w["message"] for w in record["warnings"] if w["kind"] == "categories_grouped"]
    assert grouped == [
        "column 'when' has 120 distinct values: the 49 most frequent are encoded and the rest "
        "grouped as one 'infrequent' category"
    ]
    assert record["engine"] == {
        "name": "scikit-learn",
        "reason": (
            "not compiled: column 'when' has so many values that its rarest are grouped as one "
            "category, which skl2onnx's one-hot encoder does not convert; scikit-learn serves "
            "the model"
        ),
    }
    answer = client.post(
        f"/resource/models/{record['id']}/predict",
        admin_token,
        json={"when": "01/01/2099", "site": "south", "colour": "red"},
    )
    assert answer.status_code == 200, answer.text


def test_cars_leaves_the_name_out_and_a_date_year_beats_a_category(client, admin_token):
    from vega_datasets import data

    with warnings.catch_warnings():  # vega_datasets 0.9 passes read_json's convert_dates,
        warnings.simplefilter("ignore", DeprecationWarning)  # which pandas 3 deprecates
        cars = data.cars()  # Year: datetime64, written as 1970-01-01
    dataset_id = upload(client, admin_token, cars)
    columns = _profile(client, admin_token, dataset_id)
    assert columns["Name"]["role"] == "id" and columns["Year"]["role"] == "datetime"
    body = {
        "dataset_id": dataset_id,
        "target": "Miles_per_Gallon",
        "estimator": "RandomForestRegressor",
        "params": {"n_estimators": 100, "random_state": 0},
    }
    as_date = _ready(client, admin_token, body)
    as_category = _ready(client, admin_token, body | {"columns": {"Year": "categorical"}})
    assert "Name" not in {column["name"] for column in as_date["input_schema"]}
    kinds = [w["kind"] for w in as_date["warnings"]]
    assert kinds[:2] == ["rows_dropped", "column_left_out"]
    assert as_date["warnings"][0]["message"] == (
        "8 of 406 rows have no value in the target 'Miles_per_Gallon': they are left out, and "
        "the model is trained and tested on the other 398"
    )
    date_rmse, category_rmse = as_date["metrics"]["rmse"], as_category["metrics"]["rmse"]
    print(f"cars held-out RMSE: Year as a date {date_rmse:.3f}, as a category {category_rmse:.3f}")
    assert date_rmse < category_rmse
    row = {
        "Cylinders": 8,
        "Displacement": 307.0,
        "Horsepower": 130.0,
        "Weight_in_lbs": 3504,
        "Acceleration": 12.0,
        "Origin": "USA",
    }
    rows = [row | {"Year": year} for year in ("1971-01-01", 1971, "1971")]
    answer = client.post(f"/resource/models/{as_date['id']}/predict", admin_token, json=rows)
    assert answer.status_code == 200, answer.text
    assert len(set(answer.json()["predictions"])) == 1


def test_an_imbalanced_target_is_weighted_and_estimator_warnings_reach_the_user(
    client, admin_token, stack, tmp_path
):
    rng = np.random.default_rng(3)
    rows = 200
    x = rng.normal(size=(rows, 3)) * 1000  # unscaled to the estimator: slow to converge
    label = np.where(x[:, 0] + rng.normal(0, 300, rows) > 1300, "rare", "common")
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": label})
    counts = frame["label"].value_counts()
    assert counts["common"] >= 3 * counts["rare"] >= 6
    dataset_id = upload(client, admin_token, frame)
    record = _ready(
        client,
        admin_token,
        {
            "dataset_id": dataset_id,
            "target": "label",
            "estimator": "LogisticRegression",
            "params": {"max_iter": 2},
        },
    )
    assert record["params"] == {"max_iter": 2, "class_weight": "balanced"}
    kinds = {w["kind"]: w["message"] for w in record["warnings"]}
    assert kinds["class_imbalance"] == (
        f"the classes are imbalanced ('common': {counts['common']}, 'rare': {counts['rare']}); "
        'the split is stratified, and class_weight is set to "balanced" (rows weighted '
        'inversely to their class\'s size); send "params": {"class_weight": null} to turn it '
        "off"
    )
    assert kinds["ConvergenceWarning"].startswith("lbfgs failed to converge")
    assert record["metrics"]["confusion_matrix"]["matrix"][1][1] > 0  # rare rows found
    training = record["metrics"]["training"]
    assert set(training) == {"accuracy", "balanced_accuracy", "f1_macro", "roc_auc"}

    report = client.get(f"/resource/models/{record['id']}/report", admin_token).json()
    assert report["warnings"] == record["warnings"]

    env = {"MLS_URL": stack.url, "MLS_TOKEN": admin_token, "HOME": str(tmp_path)}
    shown = subprocess.run(
        [MLS, "models", "show", record["id"]], capture_output=True, text=True, env=env
    )
    assert shown.returncode == 0, shown.stderr
    assert "metric             held-out  training" in shown.stdout
    lines = shown.stdout.split("\nwarnings\n", 1)[1].splitlines()
    assert lines == [f"- {w['message']}" for w in record["warnings"]]


def test_a_test_file_is_scored_as_it_is_extra_columns_named(client, admin_token, mixed_id, mixed):
    record = _ready(
        client,
        admin_token,
        {"dataset_id": mixed_id, "target": "price", "estimator": "Ridge", "name": "scored"},
    )
    url = f"/resource/models/{record['id']}/predict"
    test_file = mixed.head(5).to_csv(index=False).encode()  # ids, constant, target and all
    answer = client.post(url, admin_token, data=test_file, headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 5
    assert answer.headers["X-Ignored-Columns"] == "row_id,code,site,price"
    records = [{"colour": "red", "when": 2020, "note": "good", "a,b": 1, "é": 2}]
    answer = client.post(url, admin_token, json=records)
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Ignored-Columns"] == "a%2Cb,%C3%A9"
    plain = client.post(url, admin_token, json=[{"colour": "red", "when": 2020, "note": "x"}])
    assert plain.status_code == 200 and "X-Ignored-Columns" not in plain.headers

    refused = client.post(
        url + "?extra_columns=refuse",
        admin_token,
        data=test_file,
        headers={"Content-Type": "text/csv"},
    )
    assert refused.status_code == 400
    assert refused.json()["status"] == (
        "the input has column(s) 'row_id', 'code', 'site', 'price' the model does not take "
        "(?extra_columns=refuse); the model expects 'when', 'note', 'colour'; send only "
        "those, or leave out extra_columns to have the others ignored"
    )
    wrong = client.post(url + "?extra_columns=maybe", admin_token, json=records)
    assert wrong.status_code == 400
    assert wrong.json()["status"] == (
        "query parameter 'extra_columns' must be ignore or refuse, not 'maybe'"
    )
    missing = client.post(url, admin_token, json=[{"colour": "red", "row_id": 1}])
    assert missing.status_code == 422
    assert missing.json()["status"] == (
        "record 0 lacks column(s) 'when', 'note'; send null for a missing value"
    )


def test_batch_scoring_names_the_columns_it_ignores(client, admin_token, mixed_id):
    record = _ready(
        client, admin_token, {"dataset_id": mixed_id, "target": "price", "estimator": "Ridge"}
    )
    url = f"/resource/models/{record['id']}/predictions"
    refused = client.post(
        url, admin_token, json={"dataset_id": mixed_id, "extra_columns": "refuse"}
    )
    assert refused.status_code == 400
    assert refused.json()["status"] == (
        f"data set {mixed_id!r} has column(s) 'row_id', 'code', 'site', 'price' the model does "
        "not take "
        "(extra_columns: refuse); keep them with keep_columns, or leave out extra_columns to "
        "have them ignored"
    )
    started = client.post(
        url, admin_token, json={"dataset_id": mixed_id, "keep_columns": ["row_id"]}
    )
    assert started.status_code == 202, started.text
    assert started.json()["ignored_columns"] == ["code", "site", "price"]

    def done() -> dict:
        status = client.get(started.json()["status_url"], admin_token).json()
        return status if status["done"] else None

    status = eventually(done, timeout=120, message="scoring did not end", retry_on=())
    assert status["state"] == "SUCCESS", status


def _upload_bytes(client, token: str, data: bytes, query: str = "") -> tuple[int, dict]:
    response = client.post(
        f"/resource/datasets{query}", token, files={"file": ("table.csv", data, "text/csv")}
    )
    return response.status_code, response.json()


def test_a_european_csv_reads_its_numbers_and_predicts_from_one(client, admin_token):
    rng = np.random.default_rng(11)
    size = rng.uniform(20, 200, 80).round(1)
    rooms = rng.integers(1, 6, 80)
    price = (size * 3.5 + rooms * 10 + rng.normal(0, 5, 80)).round(2)
    lines = ["surface;pièces;prix"] + [
        f"{s:.1f};{r};{p:.2f}".replace(".", ",") for s, r, p in zip(size, rooms, price, strict=True)
    ]
    data = ("\n".join(lines) + "\n").encode()
    status, record = _upload_bytes(client, admin_token, data)
    assert status == 201, record
    assert (record["delimiter"], record["decimal"]) == (";", ",")
    columns = {column["name"]: column for column in record["columns"]}
    assert [columns[name]["dtype"] for name in ("surface", "pièces", "prix")] == [
        "float",
        "integer",
        "float",
    ]
    assert columns["surface"]["role"] == "numeric"
    model = _ready(
        client,
        admin_token,
        {"dataset_id": record["id"], "target": "prix", "estimator": "LinearRegression"},
    )
    assert model["metrics"]["r2"] > 0.95
    body = "surface;pièces\n100,5;3\n".encode()
    answer = client.post(
        f"/resource/models/{model['id']}/predict",
        admin_token,
        data=body,
        headers={"Content-Type": "text/csv"},
    )
    assert answer.status_code == 200, answer.text
    same = client.post(
        f"/resource/models/{model['id']}/predict",
        admin_token,
        json={"surface": 100.5, "pièces": 3},
    )
    assert answer.json()["predictions"] == same.json()["predictions"]

    # Given: a file whose first 200 rows hold no decimal number says so in the query.
    data = b"a;b\n" + b"1;2\n" * 250 + b"5,5;6\n"
    status, guessed = _upload_bytes(client, admin_token, data)
    assert status == 201 and guessed["decimal"] == "."
    assert [column["dtype"] for column in guessed["columns"]] == ["string", "integer"]
    status, given = _upload_bytes(client, admin_token, data, "?delimiter=;&decimal=,")
    assert status == 201, given
    assert given["decimal"] == "," and given["columns"][0]["dtype"] == "float"
    status, refused = _upload_bytes(client, admin_token, data, "?decimal=;")
    assert status == 400
    assert refused["status"] == "query parameter 'decimal' must be . or , not ';'"


def test_a_pandas_index_column_is_dropped_with_a_note_and_bad_headers_are_named(
    client, admin_token, customers
):
    status, record = _upload_bytes(client, admin_token, customers.to_csv().encode())
    assert status == 201, record
    assert [column["name"] for column in record["columns"]] == list(customers.columns)
    assert record["notes"] == [
        "the first column has no name: it is the row index pandas writes with "
        "DataFrame.to_csv(), and it is left out (write the file with index=False to leave it "
        "out yourself)"
    ]
    model = _ready(
        client,
        admin_token,
        {"dataset_id": record["id"], "target": "plan", "estimator": "LogisticRegression"},
    )
    assert [column["name"] for column in model["input_schema"]] == ["age", "city", "income"]
    download = client.get(f"/resource/datasets/{record['id']}/download", admin_token)
    assert download.status_code == 200

    status, refused = _upload_bytes(client, admin_token, b"a,,c\n1,2,3\n")
    assert status == 422
    assert refused["status"] == (
        "column 2 of the header has no name; name every column (only a first column without "
        "a name, pandas' index, is left out)"
    )
    status, refused = _upload_bytes(client, admin_token, b"a,b,a\n1,2,3\n")
    assert status == 422
    assert refused["status"] == (
        "the header names column 'a' more than once (columns 1, 3); give every column its own name"
    )


def test_the_client_gives_roles_dialects_and_strictness(stack, admin_token, tmp_path):
    from mlservice_client import Client
    from mlservice_client.errors import ServiceError

    path = tmp_path / "euro.csv"
    rows = [f"{i // 2};{i % 3};{i * 1.5:.1f};x{i}".replace(".", ",") for i in range(40)]
    path.write_text("n;k;y;code\n" + "\n".join(rows) + "\n")
    with Client(stack.url, token=admin_token) as client:
        record = client.upload_dataset(path, delimiter=";", decimal=",")
        assert (record["delimiter"], record["decimal"]) == (";", ",")
        model = client.train(
            record["id"],
            "y",
            "LinearRegression",
            columns={"code": "ignore", "k": "categorical"},
            wait=True,
        )
        assert model["columns"] == {"code": "ignore", "k": "categorical"}
        assert [c["name"] for c in model["input_schema"]] == ["n", "k"]
        answer = client.predict([{"n": 3, "k": "0", "code": "x3"}], model["id"])
        assert len(answer["predictions"]) == 1
        assert answer["ignored_columns"] == ["code"]
        assert "ignored_columns" not in client.predict([{"n": 3, "k": "0"}], model["id"])
        with pytest.raises(ServiceError) as refused:
            client.predict([{"n": 3, "k": "0", "code": "x3"}], model["id"], extra_columns="refuse")
        assert "'code'" in str(refused.value)
