"""The Open Inference Protocol (V2) routes through Flask's test client: what they answer and
what they refuse, with real fitted models.

Models are fitted here in-process (``fitting.train`` on small frames) and stored
as training stores them, so predictions are real; binary tensor bodies are the
ones ``tritonclient`` builds (``generate_request_body``). The whole stack, with
``tritonclient`` over HTTP, is tests/integration/test_v2.py.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton

from mlservice.registry.changes import AliasChange, NewRegisteredModel
from mlservice.security import Identity
from mlservice.store.records import ModelSource, ModelStatus
from mlservice.training import fitting
from tests.route.conftest import token_for

_names = itertools.count()


def account(ctx, prefix: str) -> tuple[str, dict[str, str]]:
    name = f"{prefix}{next(_names)}"
    ctx.accounts.create(name, "p" * 12)
    return name, token_for(ctx, name)


def identity(ctx, username: str) -> Identity:
    access = ctx.accounts.current_access(username)
    assert access is not None
    return Identity(username, access.role, access.generation, access.account_id)


def mixed_frame(rows: int = 120) -> pd.DataFrame:
    """Numbers, text and a boolean column; the plan follows income."""
    rng = np.random.default_rng(7)
    age = rng.integers(18, 80, size=rows)
    income = 1000 * age + rng.normal(0, 2000, size=rows)
    return pd.DataFrame(
        {
            "age": age,
            "city": rng.choice(["Paris", "Lyon", "Nice"], size=rows),
            "member": rng.choice([True, False], size=rows),
            "income": income.round(2),
            "plan": np.where(income > 45_000, "premium", "basic"),
        }
    )


def numeric_frame(rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(rows, 3))
    return pd.DataFrame(
        {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": (x[:, 0] + x[:, 1] > 0).astype(int)}
    )


def stored_model(ctx, owner: str, frame: pd.DataFrame, target: str, estimator: str) -> str:
    """A model of ``owner`` fitted on ``frame`` and stored ready, as training leaves it."""
    fitted = fitting.train(frame, target, estimator, {})
    model_id = ctx.models.catalog.new_id()
    ctx.models.catalog.create(
        {
            "id": model_id,
            "name": f"{estimator} on {target}",
            "owner": owner,
            "owner_id": identity(ctx, owner).account_id,
            "status": ModelStatus.QUEUED,
            "source": ModelSource.TRAINED,
            "target": target,
            "estimator": estimator,
            "params": {},
        }
    )
    ctx.models.store_bundle(model_id, fitted.bundle, status=ModelStatus.READY)
    return model_id


@pytest.fixture(scope="module")
def user(ctx):
    return account(ctx, "v2-user")


@pytest.fixture(scope="module")
def other(ctx):
    return account(ctx, "v2-other")


@pytest.fixture(scope="module")
def mixed(ctx, user) -> str:
    return stored_model(ctx, user[0], mixed_frame(), "plan", "LogisticRegression")


@pytest.fixture(scope="module")
def numeric(ctx, user) -> str:
    return stored_model(ctx, user[0], numeric_frame(), "y", "LogisticRegression")


@pytest.fixture(scope="module")
def regressor(ctx, user) -> str:
    return stored_model(ctx, user[0], numeric_frame(), "y", "LinearRegression")


ROWS = [
    {"age": 30, "city": "Paris", "member": True, "income": 31000.5},
    {"age": 70, "city": None, "member": False, "income": 72000.0},
]


def columns_request(rows: list[dict], **extra) -> dict:
    """One input per column, MLServer's ``pd`` way."""
    types = {"age": "INT64", "city": "BYTES", "member": "BOOL", "income": "FP64"}
    return {
        "inputs": [
            {"name": name, "shape": [len(rows)], "datatype": kind, "data": [r[name] for r in rows]}
            for name, kind in types.items()
        ],
        **extra,
    }


def native_rows(rows: list[dict]) -> list[dict]:
    """The same rows for the native route (a boolean column's values as its text)."""
    return [{**row, "member": str(row["member"])} for row in rows]


def infer(http, headers, name: str, body, **kwargs):
    return http.post(f"/v2/models/{name}/infer", headers=headers, json=body, **kwargs)


def refused(answer, status: int, message: str) -> None:
    assert (answer.status_code, answer.get_json()) == (status, {"error": message})


# --- server ---------------------------------------------------------------------------------


def test_server_metadata_and_health_need_no_token(http):
    for path in ("/v2", "/v2/"):
        answer = http.get(path)
        assert answer.status_code == 200
        body = answer.get_json()
        assert body["name"] == "mlservice" and body["extensions"] == ["binary_tensor_data"]
        assert body["version"]
    assert http.get("/v2/health/live").get_json() == {"live": True}
    ready = http.get("/v2/health/ready")
    assert (ready.status_code, ready.get_json()) == (200, {"live": True, "ready": True})


def test_errors_under_v2_say_error_and_elsewhere_status(http, user):
    refused(http.get("/v2/nothing"), 404, http.get("/v2/nothing").get_json()["error"])
    assert "error" in http.get("/v2/models").get_json()
    assert http.delete("/v2/health/live").status_code == 405
    assert set(http.delete("/v2/health/live").get_json()) == {"error"}
    assert set(http.get("/v2x").get_json()) == {"status"}
    assert set(http.get("/resource/nothing").get_json()) == {"status"}
    refused(
        http.post("/v2/models/default/infer", json={"inputs": []}),
        401,
        "missing bearer token: send 'Authorization: Bearer <token>'",
    )


# --- metadata and readiness ------------------------------------------------------------------


def test_model_metadata_gives_each_column_its_datatype(http, user, mixed):
    answer = http.get(f"/v2/models/{mixed}", headers=user[1])
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["name"], body["versions"], body["platform"]) == (mixed, ["1"], "sklearn_joblib")
    # No data set stored for these models: a number column says FP64; the boolean one BOOL.
    assert body["inputs"] == [
        {"name": "age", "datatype": "FP64", "shape": [-1]},
        {"name": "city", "datatype": "BYTES", "shape": [-1]},
        {"name": "member", "datatype": "BOOL", "shape": [-1]},
        {"name": "income", "datatype": "FP64", "shape": [-1]},
    ]
    assert body["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {
            "name": "probabilities",
            "datatype": "FP64",
            "shape": [-1, 2],
            "parameters": {"classes": '["basic", "premium"]'},
        },
    ]
    assert http.get(f"/v2/models/{mixed}/versions/1", headers=user[1]).get_json() == body


def test_a_regressor_has_a_label_alone(http, user, regressor):
    body = http.get(f"/v2/models/{regressor}", headers=user[1]).get_json()
    assert body["outputs"] == [{"name": "label", "datatype": "FP64", "shape": [-1]}]


def test_model_ready_and_its_refusals(http, ctx, user, other, mixed):
    answer = http.get(f"/v2/models/{mixed}/ready", headers=user[1])
    assert (answer.status_code, answer.get_json()) == (200, {"name": mixed, "ready": True})
    refused(http.get(f"/v2/models/{mixed}/ready", headers=other[1]), 404, f"no model {mixed!r}")
    refused(
        http.get(f"/v2/models/{mixed}/versions/2/ready", headers=user[1]),
        404,
        f"model {mixed!r} is at version 1, not 2: ask /v2/models/{mixed} (or .../versions/1)",
    )
    refused(
        http.get("/v2/models/no-such-model/ready", headers=user[1]),
        404,
        "no model 'no-such-model': name a registered model, a model id, or 'default'",
    )
    training = ctx.models.catalog.new_id()
    ctx.models.catalog.create(
        {
            "id": training,
            "name": "still training",
            "owner": user[0],
            "owner_id": identity(ctx, user[0]).account_id,
            "status": ModelStatus.TRAINING,
            "source": ModelSource.TRAINED,
        }
    )
    refused(
        http.get(f"/v2/models/{training}/ready", headers=user[1]),
        409,
        f"model {training!r} is training, not ready",
    )


# --- inference -------------------------------------------------------------------------------


def test_per_column_inputs_answer_the_native_routes_labels(http, user, mixed):
    answer = infer(http, user[1], mixed, columns_request(ROWS, id="req-7"))
    assert answer.status_code == 200, answer.get_json()
    native = http.post(
        f"/resource/models/{mixed}/predict", headers=user[1], json=native_rows(ROWS)
    ).get_json()
    assert answer.get_json() == {
        "model_name": mixed,
        "model_version": "1",
        "id": "req-7",
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [2], "data": native["predictions"]}
        ],
    }
    assert answer.headers["X-Model-Version"] == "1"


def test_probabilities_when_asked_in_class_order(http, user, mixed):
    outputs = [{"name": "probabilities"}, {"name": "label"}]
    body = columns_request(ROWS, outputs=outputs, parameters={"content_type": "pd"})
    answer = infer(http, user[1], mixed, body)
    assert answer.status_code == 200, answer.get_json()
    probabilities, label = answer.get_json()["outputs"]
    native = http.post(
        f"/resource/models/{mixed}/predict?probabilities=true",
        headers=user[1],
        json=native_rows(ROWS),
    ).get_json()
    assert (probabilities["shape"], probabilities["datatype"]) == ([2, 2], "FP64")
    assert probabilities["parameters"] == {"classes": '["basic", "premium"]'}
    expected = [[row["basic"], row["premium"]] for row in native["probabilities"]]
    assert probabilities["data"] == [value for row in expected for value in row]
    assert label["data"] == native["predictions"]


def test_a_numeric_model_takes_one_2d_tensor_in_its_columns_order(http, user, numeric):
    rows = [[0.5, 0.25, -1.0], [-2.0, -0.5, 3.0], [1.0, 1.0, 1.0]]
    native = http.post(
        f"/resource/models/{numeric}/predict",
        headers=user[1],
        json=[dict(zip("abc", row, strict=True)) for row in rows],
    ).get_json()
    for data in (rows, [value for row in rows for value in row]):  # nested, or flat
        answer = infer(
            http,
            user[1],
            numeric,
            {"inputs": [{"name": "input-0", "shape": [3, 3], "datatype": "FP32", "data": data}]},
        )
        assert answer.status_code == 200, answer.get_json()
        (label,) = answer.get_json()["outputs"]
        assert (label["datatype"], label["data"]) == ("INT64", native["predictions"])


def test_binary_tensor_data_in_and_out_as_tritonclient_sends_it(http, user, mixed):
    tensors = []
    for name, values, kind in (
        ("age", np.array([30, 70], dtype=np.int64), "INT64"),
        ("city", np.array([b"Paris", b"Nice"], dtype=np.object_), "BYTES"),
        ("member", np.array([True, False]), "BOOL"),
        ("income", np.array([31000.5, 72000.0]), "FP64"),
    ):
        tensor = triton.InferInput(name, [2], kind)
        tensor.set_data_from_numpy(values)  # binary, tritonclient's default
        tensors.append(tensor)
    outputs = [triton.InferRequestedOutput("label"), triton.InferRequestedOutput("probabilities")]
    body, json_size = triton.InferenceServerClient.generate_request_body(tensors, outputs=outputs)
    answer = http.post(
        f"/v2/models/{mixed}/infer",
        headers=user[1] | {"Inference-Header-Content-Length": str(json_size)},
        data=body,
    )
    assert answer.status_code == 200, answer.data[:300]
    assert answer.mimetype == "application/octet-stream"
    result = triton.InferResult.from_response_body(
        answer.data, header_length=int(answer.headers["Inference-Header-Content-Length"])
    )
    rows = [{**ROWS[0], "city": "Paris"}, {**ROWS[1], "city": "Nice"}]
    native = http.post(
        f"/resource/models/{mixed}/predict?probabilities=true",
        headers=user[1],
        json=native_rows(rows),
    ).get_json()
    assert [label.decode() for label in result.as_numpy("label")] == native["predictions"]
    assert result.as_numpy("probabilities").tolist() == [
        [row["basic"], row["premium"]] for row in native["probabilities"]
    ]


def test_by_registered_name_production_else_latest_and_by_version(http, ctx, user, other, mixed):
    owner = identity(ctx, user[0])
    name = f"v2-churn-{next(_names)}"
    ctx.registry.create(owner, NewRegisteredModel(name=name))
    refused(
        infer(http, user[1], name, columns_request(ROWS)),
        404,
        f"registered model {name!r} has no version yet; add one with "
        f"POST /resource/registry/{name}/versions",
    )
    second = stored_model(ctx, user[0], mixed_frame(80), "plan", "DecisionTreeClassifier")
    ctx.registry.add_version(name, owner, mixed)
    ctx.registry.add_version(name, owner, second)
    latest = infer(http, user[1], name, columns_request(ROWS))
    assert latest.status_code == 200, latest.get_json()
    assert (latest.get_json()["model_name"], latest.get_json()["model_version"]) == (name, "2")
    assert (latest.headers["X-Registry-Version"], latest.headers["X-Model-Id"]) == ("2", second)
    ctx.registry.set_alias(name, "production", owner, AliasChange(version=1))
    production = infer(http, user[1], name, columns_request(ROWS))
    assert production.get_json()["model_version"] == "1"
    assert production.headers["X-Model-Id"] == mixed
    pinned = http.post(
        f"/v2/models/{name}/versions/2/infer", headers=user[1], json=columns_request(ROWS)
    )
    assert (pinned.status_code, pinned.get_json()["model_version"]) == (200, "2")
    metadata = http.get(f"/v2/models/{name}", headers=user[1]).get_json()
    assert (metadata["name"], metadata["versions"]) == (name, ["1", "2"])
    refused(
        http.get(f"/v2/models/{name}/versions/3", headers=user[1]),
        404,
        f"registered model {name!r} has no version 3",
    )
    refused(
        infer(http, other[1], name, columns_request(ROWS)),
        404,
        f"no model {name!r}: name a registered model, a model id, or 'default'",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda body: body["inputs"][0].update(datatype="BYTES"),
            "input 'age' has datatype 'BYTES'; the column takes numbers: FP64 (or another INT, "
            "UINT or FP datatype), shape [-1]",
        ),
        (
            lambda body: body["inputs"][1].update(datatype="FP64"),
            "input 'city' has datatype 'FP64'; the column takes text: BYTES, shape [-1]",
        ),
        (
            lambda body: body["inputs"][2].update(datatype="INT8"),
            "input 'member' has datatype 'INT8'; the column takes BOOL (or its text, BYTES), "
            "shape [-1]",
        ),
        (
            lambda body: body["inputs"][0].update(shape=[2, 2]),
            "input 'age' has shape [2, 2]; a column's input has shape [n] (or [n, 1]) for n rows",
        ),
        (
            lambda body: body["inputs"][3].update(shape=[3]),
            "input 'income' has 3 rows (shape [3]) and input 'age' 2: every input holds one "
            "value per row",
        ),
        (
            lambda body: body["inputs"].pop(1),
            "the request lacks input(s) 'city' (BYTES, [-1]); send one input per column (a "
            "missing value as null)",
        ),
        (
            lambda body: body["inputs"][0].update(shape=[3]),
            "input 'age' has shape [3] (3 values) but 2 values in its data",
        ),
        (
            lambda body: body["inputs"][0].update(data=[30, 1.5]),
            "input 'age' (INT64) takes integers; element 1 is 1.5",
        ),
        (
            lambda body: body["inputs"][3].update(data=[1, "x"]),
            "input 'income' (FP64) takes numbers; element 1 is 'x'",
        ),
        (
            lambda body: body["inputs"][1].update(data=["Paris", 3]),
            "input 'city' (BYTES) takes text; element 1 is 3",
        ),
        (
            lambda body: body["inputs"][2].update(data=[True, "yes"]),
            "input 'member' (BOOL) takes true or false; element 1 is 'yes'",
        ),
        (
            lambda body: body["inputs"].append(dict(body["inputs"][0], name="height")),
            "input(s) 'height' are not columns of the model; it takes 'age' (FP64, [-1]), "
            "'city' (BYTES, [-1]), 'member' (BOOL, [-1]), 'income' (FP64, [-1])",
        ),
        (
            lambda body: body["inputs"].append(body["inputs"][0]),
            "input(s) 'age' are sent more than once",
        ),
        (
            lambda body: body["inputs"][0].pop("data"),
            "input 'age' has no 'data' (and no 'binary_data_size' parameter): send its values",
        ),
        (
            lambda body: body["inputs"][0].pop("shape"),
            "the inference request lacks 'inputs[0].shape', which is required",
        ),
        (
            lambda body: body["inputs"][0].update(shape=[-1]),
            "the inference request 'inputs[0].shape[0]' must be a dimension: an integer, 0 or more",
        ),
        (
            lambda body: body["inputs"][0].update(extra=1),
            "the inference request has an unknown field 'inputs[0].extra'; the protocol's fields "
            "are id, parameters, inputs (name, shape, datatype, parameters, data) and outputs "
            "(name, parameters)",
        ),
        (
            lambda body: body.update(id=7),
            "the inference request 'id' must be a string",
        ),
        (
            lambda body: body.update(outputs=[{"name": "score"}]),
            "the model has no output 'score'; it gives 'label' and 'probabilities'",
        ),
        (
            lambda body: body.update(
                outputs=[{"name": "label", "parameters": {"classification": 2}}]
            ),
            "output 'label': parameter 'classification' (Triton's classification extension) is "
            "not supported; ask for 'probabilities'",
        ),
    ],
)
def test_refusals_name_the_input_and_what_it_needs(http, user, mixed, change, message):
    body = columns_request(ROWS)
    change(body)
    refused(infer(http, user[1], mixed, body), 400, message)


def test_refusals_of_the_body_itself(http, user, mixed, regressor):
    refused(
        http.post(f"/v2/models/{mixed}/infer", headers=user[1], data=b"{not json"),
        400,
        "the inference request is not valid JSON: JSON is malformed: object keys must be strings "
        "(byte 1)",
    )
    refused(
        http.post(f"/v2/models/{mixed}/infer", headers=user[1], data=b""),
        400,
        "the request body is empty; send an inference request: "
        + '{"inputs": [{"name": "<column>", "shape": [1], "datatype": "FP64", "data": [1.5]}]}',
    )
    refused(
        http.post(
            f"/v2/models/{mixed}/infer",
            headers=user[1],
            data=json.dumps(columns_request(ROWS)),
            content_type="text/csv",
        ),
        415,
        "cannot read an inference request sent as 'text/csv'; send JSON (application/json), or "
        "JSON then binary tensor data (application/octet-stream with "
        "Inference-Header-Content-Length)",
    )
    refused(
        infer(http, user[1] | {"Content-Encoding": "gzip"}, mixed, columns_request(ROWS)),
        415,
        "the request body is compressed (gzip), which is not read here; send it uncompressed "
        "(tritonclient: no request_compression_algorithm)",
    )
    refused(
        infer(
            http,
            user[1] | {"Inference-Header-Content-Length": "100000"},
            mixed,
            columns_request(ROWS),
        ),
        400,
        "Inference-Header-Content-Length must be the length in bytes of the JSON that starts the "
        f"body, from 1 to {len(json.dumps(columns_request(ROWS)))}, not '100000'",
    )
    refused(
        infer(http, user[1], mixed, {"inputs": []}),
        400,
        "the request has no inputs; send one per column: 'age' (FP64, [-1]), 'city' (BYTES, "
        "[-1]), 'member' (BOOL, [-1]), 'income' (FP64, [-1])",
    )
    row = {"inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [1.0]} for n in "abc"]}
    refused(
        infer(http, user[1], regressor, {**row, "outputs": [{"name": "probabilities"}]}),
        400,
        "the model (LinearRegression, a regressor) has no output 'probabilities'; ask for 'label'",
    )


def test_a_2d_tensor_is_only_for_numeric_models_and_their_width(http, user, mixed, numeric):
    tensor = {"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}
    refused(
        infer(http, user[1], numeric, {"inputs": [tensor]}),
        400,
        "input 'input-0' is not a column of the model, nor a 2-D tensor of its columns: it has "
        "shape [1, 2]. Send one input per column ('a' (FP64, [-1]), 'b' (FP64, [-1]), 'c' (FP64, "
        "[-1])), or one input of shape [n, 3] with the columns in the order 'a', 'b', 'c'",
    )
    refused(
        infer(http, user[1], mixed, {"inputs": [tensor]}),
        400,
        "input 'input-0' is not a column of the model; it takes one input per column: 'age' "
        "(FP64, [-1]), 'city' (BYTES, [-1]), 'member' (BOOL, [-1]), 'income' (FP64, [-1])",
    )


def test_another_users_model_is_404_and_the_default_needs_init(http, user, other, mixed):
    refused(infer(http, other[1], mixed, columns_request(ROWS)), 404, f"no model {mixed!r}")
    refused(
        http.get("/v2/models/default", headers=user[1]),
        424,
        "the service is not initialised: call GET /resource/init first",
    )


def test_one_row_of_plain_values_answers_as_the_long_way_does(http, user, numeric):
    """One row of plain JSON values takes a short path; what it answers and refuses is the
    same as the general one's (a second row takes that one)."""
    rows = [{"a": 0.5, "b": 2, "c": -1.0}, {"a": -2.0, "b": -1, "c": 3.0}]
    native = http.post(f"/resource/models/{numeric}/predict", headers=user[1], json=rows)
    labels = []
    for row in rows:
        body = {
            "inputs": [
                {
                    "name": name,
                    "shape": [1],
                    "datatype": "INT64" if name == "b" else "FP64",
                    "data": [value],
                }
                for name, value in row.items()
            ]
        }
        answer = infer(http, user[1], numeric, body)
        assert answer.status_code == 200, answer.get_json()
        labels += answer.get_json()["outputs"][0]["data"]
    assert labels == native.get_json()["predictions"]
    both = {
        "inputs": [
            {"name": name, "shape": [2], "datatype": "FP64", "data": [row[name] for row in rows]}
            for name in "abc"
        ]
    }
    assert infer(http, user[1], numeric, both).get_json()["outputs"][0]["data"] == labels
    for value, message in (
        (1.5, "input 'b' (INT64) takes integers; element 0 is 1.5"),
        (True, "input 'b' (INT64) takes integers; element 0 is True"),
        (None, None),
    ):
        body = {
            "inputs": [
                {"name": "a", "shape": [1], "datatype": "FP64", "data": [0.5]},
                {"name": "b", "shape": [1], "datatype": "INT64", "data": [value]},
                {"name": "c", "shape": [1], "datatype": "FP64", "data": [1.0]},
            ]
        }
        answer = infer(http, user[1], numeric, body)
        if message is None:  # null: a missing value, imputed
            assert answer.status_code == 200, answer.get_json()
        else:
            refused(answer, 400, message)
