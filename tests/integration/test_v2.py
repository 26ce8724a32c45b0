"""The Open Inference Protocol (V2) on the real stack, driven by ``tritonclient.http``.

One user trains one mixed-type model (integers, text, a boolean, floats) that
registers itself under a name; the default model (iris: four numbers) is the
numeric one. Everything goes through NGINX with a bearer token in
``tritonclient``'s ``headers=``, as a KServe or Triton client would send it.
What each refusal says is the route tier's (tests/route/test_v2_routes.py); here
the client must see it as an error with the status and message.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import requests
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.helpers import eventually, train, upload, wait_ready
from tests.integration.test_metrics import api_url, scrape, value

NAME = "v2-churn"


def mixed_frame(rows: int = 200) -> pd.DataFrame:
    """An integer, a text, a boolean and a float column; the plan follows income."""
    rng = np.random.default_rng(11)
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


@pytest.fixture(scope="module")
def owner(client, admin_token):
    name, password = "v2-owner", "v2-owner-password"
    made = client.post(
        "/resource/users", admin_token, json={"username": name, "password": password}
    )
    assert made.status_code == 201, made.text
    return name, client.token(name, password)


@pytest.fixture(scope="module")
def model_id(client, owner) -> str:
    """The mixed model, ready, and version 1 of ``NAME``."""
    _, token = owner
    dataset_id = upload(client, token, mixed_frame())
    body = {"dataset_id": dataset_id, "target": "plan", "estimator": "LogisticRegression"}
    model = train(client, token, body | {"register_as": NAME})["model_id"]
    assert wait_ready(client, token, model)["status"] == "ready"
    eventually(
        lambda: client.get(f"/resource/registry/{NAME}/versions/1", token).status_code == 200,
        message="register_as did not make version 1",
    )
    return model


@pytest.fixture(scope="module")
def v2(stack):
    connection = triton.InferenceServerClient(url=stack.url.removeprefix("http://"))
    yield connection
    connection.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ROWS = pd.DataFrame(
    {
        "age": [30, 70, 45],
        "city": ["Paris", "Nice", "Lyon"],
        "member": [True, False, True],
        "income": [31000.5, 72000.0, 45500.25],
    }
)


def column_inputs(rows: pd.DataFrame, binary: bool = True) -> list[triton.InferInput]:
    """One input per column, typed as the model's metadata says."""
    arrays = {
        "age": (rows["age"].to_numpy(np.int64), "INT64"),
        "city": (rows["city"].to_numpy(object), "BYTES"),
        "member": (rows["member"].to_numpy(bool), "BOOL"),
        "income": (rows["income"].to_numpy(np.float64), "FP64"),
    }
    tensors = []
    for name, (values, datatype) in arrays.items():
        tensor = triton.InferInput(name, [len(rows)], datatype)
        tensor.set_data_from_numpy(values, binary_data=binary)
        tensors.append(tensor)
    return tensors


def native(client, token: str, path: str, rows: pd.DataFrame) -> dict:
    """The native JSON answer (a boolean column's values as the text training saw)."""
    records = rows.astype(object).assign(member=rows["member"].map(str)).to_dict("records")
    answer = client.post(path + "?probabilities=true", token, json=records)
    assert answer.status_code == 200, answer.text
    return answer.json()


def failure(call) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as raised:
        call()
    return raised.value


def test_live_ready_and_server_metadata(v2):
    assert v2.is_server_live() and v2.is_server_ready()
    metadata = v2.get_server_metadata()
    assert (metadata["name"], metadata["extensions"]) == ("mlservice", ["binary_tensor_data"])


def test_model_metadata_types_each_column_from_its_data_set(v2, owner, model_id):
    headers = auth(owner[1])
    assert v2.is_model_ready(model_id, headers=headers)
    assert v2.is_model_ready(NAME, headers=headers)
    metadata = v2.get_model_metadata(model_id, headers=headers)
    assert metadata["inputs"] == [
        {"name": "age", "datatype": "INT64", "shape": [-1]},
        {"name": "city", "datatype": "BYTES", "shape": [-1]},
        {"name": "member", "datatype": "BOOL", "shape": [-1]},
        {"name": "income", "datatype": "FP64", "shape": [-1]},
    ]
    assert [output["name"] for output in metadata["outputs"]] == ["label", "probabilities"]
    assert metadata["outputs"][1]["parameters"] == {"classes": '["basic", "premium"]'}
    by_name = v2.get_model_metadata(NAME, headers=headers)
    assert (by_name["name"], by_name["versions"]) == (NAME, ["1"])
    assert by_name["inputs"] == metadata["inputs"]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_per_column_inputs_answer_the_native_routes_labels(client, v2, owner, model_id, binary):
    want = native(client, owner[1], f"/resource/models/{model_id}/predict", ROWS)
    outputs = [
        triton.InferRequestedOutput("label", binary_data=binary),
        triton.InferRequestedOutput("probabilities", binary_data=binary),
    ]
    result = v2.infer(
        model_id,
        column_inputs(ROWS, binary),
        outputs=outputs,
        request_id="r-1",
        headers=auth(owner[1]),
    )
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == (
        model_id,
        "1",
        "r-1",
    )
    labels = [label.decode() if binary else label for label in result.as_numpy("label")]
    assert labels == want["predictions"]
    assert result.as_numpy("probabilities").tolist() == [
        [row["basic"], row["premium"]] for row in want["probabilities"]
    ]


def test_label_alone_by_default_and_by_name_and_version(client, v2, owner, model_id):
    want = native(client, owner[1], f"/resource/models/{model_id}/predict", ROWS)
    for name, version in ((NAME, ""), (NAME, "1"), (model_id, "")):
        result = v2.infer(name, column_inputs(ROWS), model_version=version, headers=auth(owner[1]))
        assert [label.decode() for label in result.as_numpy("label")] == want["predictions"]
        assert result.as_numpy("probabilities") is None
        assert result.get_response()["model_version"] == "1"


def test_a_numeric_model_takes_one_2d_tensor(client, v2, admin_token, initialised):
    rows = pd.DataFrame(
        {
            "sepal length (cm)": [5.1, 6.7, 6.3],
            "sepal width (cm)": [3.5, 3.0, 2.9],
            "petal length (cm)": [1.4, 5.0, 5.6],
            "petal width (cm)": [0.2, 1.7, 1.8],
        }
    )
    want = client.post("/resource/predict", admin_token, json=rows.to_dict("records")).json()
    tensor = triton.InferInput("input-0", [3, 4], "FP64")
    tensor.set_data_from_numpy(rows.to_numpy(np.float64))
    result = v2.infer("default", [tensor], headers=auth(admin_token))
    assert [label.decode() for label in result.as_numpy("label")] == want["predictions"]


def test_refusals_reach_the_client_with_status_and_message(v2, owner, model_id):
    headers = auth(owner[1])
    inputs = column_inputs(ROWS)
    wrong_type = [triton.InferInput("age", [3], "BYTES")] + inputs[1:]
    wrong_type[0].set_data_from_numpy(np.array([b"30", b"70", b"45"], dtype=object))
    error = failure(lambda: v2.infer(model_id, wrong_type, headers=headers))
    assert error.status() == "400"
    assert error.message() == (
        "input 'age' has datatype 'BYTES'; the column takes numbers: FP64 (or another INT, UINT "
        "or FP datatype), shape [-1]"
    )
    wrong_shape = [triton.InferInput("age", [1, 3], "INT64")] + inputs[1:]
    wrong_shape[0].set_data_from_numpy(np.array([[30, 70, 45]], dtype=np.int64))
    error = failure(lambda: v2.infer(model_id, wrong_shape, headers=headers))
    assert (error.status(), error.message()) == (
        "400",
        "input 'age' has shape [1, 3]; a column's input has shape [n] (or [n, 1]) for n rows",
    )
    error = failure(lambda: v2.infer(model_id, inputs[1:], headers=headers))
    assert (error.status(), error.message()) == (
        "400",
        "the request lacks input(s) 'age' (FP64, [-1]); send one input per column (a missing "
        "value as null)",
    )
    error = failure(lambda: v2.infer("no-such-model", inputs, headers=headers))
    assert (error.status(), error.message()) == (
        "404",
        "no model 'no-such-model': name a registered model, a model id, or 'default'",
    )
    error = failure(lambda: v2.infer(model_id, inputs))
    assert error.status() == "401"


def test_another_users_model_and_name_are_404(v2, new_user, model_id):
    _, _, token = new_user()
    for name in (model_id, NAME):
        error = failure(lambda name=name: v2.infer(name, column_inputs(ROWS), headers=auth(token)))
        assert error.status() == "404"
        assert not v2.is_model_ready(name, headers=auth(token))


def test_errors_are_error_objects_from_the_api_and_from_nginx(client, owner, nginx_alone):
    answer = client.post("/v2/models/no-such-model/infer", owner[1], json={"inputs": []})
    assert (answer.status_code, answer.json()) == (
        404,
        {"error": "no model 'no-such-model': name a registered model, a model id, or 'default'"},
    )
    assert set(client.get("/v2/unknown").json()) == {"error"}
    unavailable = requests.get(nginx_alone.url + "/v2/health/ready", timeout=10)
    assert (unavailable.status_code, unavailable.json()) == (
        503,
        {"error": "the API is not reachable behind NGINX; retry shortly"},
    )
    too_large = requests.post(
        nginx_alone.url + "/v2/models/x/infer", data=b"x" * (3 * 1024 * 1024), timeout=30
    )
    assert (too_large.status_code, too_large.json()) == (413, {"error": "request body too large"})
    elsewhere = requests.get(nginx_alone.url + "/v2x", timeout=10)
    assert elsewhere.json() == {"status": "the API is not reachable behind NGINX; retry shortly"}


def test_v2_predictions_are_counted_by_model_kind(client, stack, owner, model_id, admin_token):
    """The default model's V2 answers count as ``default``, a user's model's as ``user``."""
    tensor = {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}
    mixed = {
        "inputs": [
            {"name": "age", "shape": [1], "datatype": "INT64", "data": [30]},
            {"name": "city", "shape": [1], "datatype": "BYTES", "data": ["Paris"]},
            {"name": "member", "shape": [1], "datatype": "BOOL", "data": [True]},
            {"name": "income", "shape": [1], "datatype": "FP64", "data": [31000.5]},
        ]
    }
    before = scrape(api_url(stack))
    engines = {}
    for kind, path, token, body in (
        ("default", "/v2/models/default/infer", admin_token, {"inputs": [tensor]}),
        ("user", f"/v2/models/{model_id}/infer", owner[1], mixed),
    ):
        answer = client.post(path, token, json=body)
        assert answer.status_code == 200, answer.text
        engines[kind] = answer.headers["X-Model-Engine"]
    after = scrape(api_url(stack))
    for kind, engine in engines.items():
        labels = {"kind": kind, "engine": engine}
        assert value(after, "mlservice_predictions_total", **labels) == (
            value(before, "mlservice_predictions_total", **labels) + 1
        )
