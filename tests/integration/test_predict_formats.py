"""Predictions through NGINX from every body format and in every answer format.

Each input format must give exactly the answer the JSON records give for the
same rows, on the default (iris, ONNX Runtime) model and on a user's model
with text and numeric columns; each answer format, read back, must hold the
JSON answer's values.
"""

import io

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from tests.helpers import train, upload, wait_ready

IRIS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
IRIS_ROWS = [
    [5.1, 3.5, 1.4, 0.2],
    [6.4, 3.2, 4.5, 1.5],
    [7.7, 3.0, 6.1, 2.3],
    [5.9, None, 4.2, 1.3],
    [6.3, 2.8, 5.1, 1.5],
]
CUSTOMER_FEATURES = ["age", "city", "income"]

PARQUET = "application/vnd.apache.parquet"
ARROW = "application/vnd.apache.arrow.stream"


@pytest.fixture(scope="module")
def iris(initialised):
    """The default model's path and rows (records)."""
    return "/resource/predict", [dict(zip(IRIS, row, strict=True)) for row in IRIS_ROWS]


@pytest.fixture(scope="module")
def customer_model(client, admin_token, customers):
    """A user's classifier on a text and two numeric columns, and rows for it."""
    dataset_id = upload(client, admin_token, customers)
    accepted = train(
        client,
        admin_token,
        {
            "dataset_id": dataset_id,
            "target": "plan",
            "features": CUSTOMER_FEATURES,
            "estimator": "LogisticRegression",
            "params": {},
            "compile": False,  # one version for the whole module
        },
    )
    record = wait_ready(client, admin_token, accepted["model_id"])
    assert record["status"] == "ready", record
    frame = customers[CUSTOMER_FEATURES].head(40)
    records = [
        {key: (None if value != value else value) for key, value in row.items()}  # NaN → null
        for row in frame.to_dict("records")
    ]
    records.append({"age": 30.0, "city": "007", "income": 41000.5})  # "007" stays text
    yield f"/resource/models/{accepted['model_id']}/predict", records
    client.delete(f"/resource/models/{accepted['model_id']}", admin_token)
    client.delete(f"/resource/datasets/{dataset_id}", admin_token)


@pytest.fixture(params=["iris", "customer_model"])
def model(request):
    """Each test runs on both models: (predict path, records)."""
    return request.getfixturevalue(request.param)


def as_table(records: list[dict]) -> pa.Table:
    columns = list(records[0])
    return pa.table({name: [record[name] for record in records] for name in columns})


def as_csv(records: list[dict]) -> bytes:
    return pd.DataFrame(records).to_csv(index=False).encode()


def as_parquet(records: list[dict]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(as_table(records), sink)
    return sink.getvalue()


def as_arrow(records: list[dict]) -> bytes:
    table = as_table(records)
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def json_bodies(records: list[dict]) -> dict[str, object]:
    names = list(records[0])
    rows = [[record[name] for name in names] for record in records]
    columns = {name: [record[name] for record in records] for name in names}
    return {
        "dataframe_split": {"dataframe_split": {"columns": names, "data": rows}},
        "dataframe_records": {"dataframe_records": records},
        "instances_rows": {"instances": rows},
        "inputs_columns": {"inputs": columns},
        "columns": {"columns": columns},
    }


def post(client, token, path, data, content_type, accept=None, probabilities=True):
    headers = {"Content-Type": content_type}
    if accept:
        headers["Accept"] = accept
    query = "?probabilities=true" if probabilities else ""
    return client.post(path + query, token, data=data, headers=headers)


def reference(client, token, path, records) -> dict:
    """The JSON records answer, which every other format must equal."""
    response = client.post(path + "?probabilities=true", token, json=records)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    "shape",
    ["dataframe_split", "dataframe_records", "instances_rows", "inputs_columns", "columns"],
)
def test_json_shapes_answer_as_records_do(client, admin_token, model, shape):
    path, records = model
    expected = reference(client, admin_token, path, records)
    response = client.post(
        path + "?probabilities=true", admin_token, json=json_bodies(records)[shape]
    )
    assert response.status_code == 200, response.text
    assert response.json() == expected


@pytest.mark.parametrize(
    "content_type, encode",
    [
        ("text/csv", as_csv),
        (PARQUET, as_parquet),
        ("application/x-parquet", as_parquet),
        (ARROW, as_arrow),
    ],
)
def test_body_formats_answer_as_records_do(client, admin_token, model, content_type, encode):
    path, records = model
    expected = reference(client, admin_token, path, records)
    response = post(client, admin_token, path, encode(records), content_type)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == expected


def read_answer(response) -> dict[str, list]:
    content_type = response.headers["Content-Type"]
    if content_type.startswith("text/csv"):
        return pacsv.read_csv(io.BytesIO(response.content)).to_pydict()
    if content_type in (PARQUET, "application/x-parquet"):
        return pq.read_table(io.BytesIO(response.content)).to_pydict()
    return ipc.open_stream(response.content).read_all().to_pydict()


@pytest.mark.parametrize(
    "accept, content_type",
    [
        ("text/csv", "text/csv; charset=utf-8"),
        (PARQUET, PARQUET),
        ("application/x-parquet", "application/x-parquet"),
        (ARROW, ARROW),
        ("application/xml;q=0.9, text/csv;q=0.5", "text/csv; charset=utf-8"),
    ],
)
def test_answer_formats_hold_the_json_values(client, admin_token, model, accept, content_type):
    path, records = model
    expected = reference(client, admin_token, path, records)
    response = post(client, admin_token, path, as_csv(records), "text/csv", accept=accept)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == content_type
    for header in ("X-Model-Version", "X-Model-Engine", "X-Served-By"):
        assert response.headers[header]
    columns = {"prediction": expected["predictions"]} | {
        f"probability_{label}": [row[label] for row in expected["probabilities"]]
        for label in expected["probabilities"][0]
    }
    assert read_answer(response) == columns
    plain = post(client, admin_token, path, as_csv(records), "text/csv", accept, False)
    assert read_answer(plain) == {"prediction": expected["predictions"]}


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/*"])
def test_json_is_the_default_answer(client, admin_token, iris, accept):
    path, records = iris
    response = post(client, admin_token, path, as_csv(records), "text/csv", accept=accept)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == reference(client, admin_token, path, records)


def test_csv_text_columns_stay_text(client, admin_token, customer_model):
    """A model's text column is read as text: "007" is a category, not the number 7."""
    path, _ = customer_model
    data = b"age,city,income\n30,007,41000.5\n"
    response = post(client, admin_token, path, data, "text/csv")
    assert response.status_code == 200, response.text
    record = [{"age": 30, "city": "007", "income": 41000.5}]
    assert response.json() == reference(client, admin_token, path, record)


def test_refusals_name_the_problem(client, admin_token, customer_model):
    path, records = customer_model
    cases = [
        (
            b"age,city,income\n30,Paris,1000\nthirty,Lyon,2000\n",
            "text/csv",
            None,
            422,
            "column 'age' expects a number; row 1 has 'thirty'",
        ),
        (
            b"age,income\n30,1000\n",
            "text/csv",
            None,
            422,
            "the input lacks column(s) 'city'; send every column the model expects, a missing "
            "value as null (JSON) or an empty cell (CSV)",
        ),
        (
            b"\xff\xfe,income\n1,2\n",
            "text/csv",
            None,
            400,
            "the column names of the CSV body are not UTF-8 text",
        ),
        (
            b"age,city,income\n1,2,3\n",
            PARQUET,
            None,
            400,
            "the body is not a Parquet file (its footer cannot be read); send a whole Parquet file",
        ),
        (
            as_csv(records),
            "text/plain",
            None,
            415,
            "cannot read a prediction body sent as 'text/plain'; send it with Content-Type "
            "application/json, text/csv, application/vnd.apache.parquet, "
            "application/x-parquet, application/vnd.apache.arrow.stream",
        ),
        (
            as_csv(records),
            "text/csv",
            "application/xml",
            406,
            "cannot answer in 'application/xml'; ask with Accept: application/json, text/csv, "
            "application/vnd.apache.parquet, application/x-parquet, "
            "application/vnd.apache.arrow.stream (or */*, which means JSON)",
        ),
    ]
    for data, content_type, accept, status, message in cases:
        response = post(client, admin_token, path, data, content_type, accept=accept)
        assert (response.status_code, response.json()) == (status, {"status": message})
        assert response.headers["Content-Type"] == "application/json"


def test_a_csv_body_over_the_cap_is_413(client, admin_token, iris):
    path, _ = iris
    row = b"5.1,3.5,1.4,0.2\n"
    data = ",".join(f'"{name}"' for name in IRIS).encode() + b"\n" + row * (33 * 1024**2 // 16)
    response = post(client, admin_token, path, data, "text/csv")
    assert (response.status_code, response.json()) == (
        413,
        {
            "status": "the CSV body is 33.0 MiB; at most 32 MiB ([limits] max_json_mb): "
            "send fewer records per request"
        },
    )
