"""The Open Inference Protocol's tensors as model input and answers, without a server.

Binary tensor data is checked against ``tritonclient``'s own encoder and decoder:
what it sends is read here, what is written here it reads back.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import serialize_byte_tensor

from mlservice.errors import BadRequest, TooLarge
from mlservice.serving import v2_protocol
from mlservice.store.bundles import ModelBundle

SCHEMA = [
    {"name": "age", "type": "number"},
    {"name": "city", "type": "string", "categories": ["Lyon", "Paris"]},
    {"name": "member", "type": "string", "categories": ["False", "True"]},
]


def bundle(task: str = "classification", classes=None) -> ModelBundle:
    return ModelBundle(
        pipeline=None,
        task=task,
        estimator="LogisticRegression",
        params={},
        schema=SCHEMA,
        target="plan",
        classes=classes,
    )


def request(**body) -> v2_protocol.InferenceRequest:
    return v2_protocol.decode_request(json.dumps(body).encode())


@pytest.mark.parametrize(
    ("column", "profiled", "datatype"),
    [
        (SCHEMA[0], None, "FP64"),
        (SCHEMA[0], "integer", "INT64"),
        (SCHEMA[0], "float", "FP64"),
        (SCHEMA[1], None, "BYTES"),
        (SCHEMA[2], None, "BOOL"),
        (SCHEMA[1], "boolean", "BOOL"),
        ({"name": "x", "type": "string", "categories": []}, None, "BYTES"),
    ],
)
def test_input_datatypes(column, profiled, datatype):
    assert v2_protocol.input_datatype(column, profiled) == datatype


@pytest.mark.parametrize(
    ("task", "classes", "datatype"),
    [
        ("classification", ["basic", "premium"], "BYTES"),
        ("classification", [0, 1, 2], "INT64"),
        ("classification", [np.int64(0), np.int64(1)], "INT64"),
        ("classification", [False, True], "BOOL"),
        ("classification", [0.5, 1], "FP64"),
        ("regression", None, "FP64"),
    ],
)
def test_label_datatypes(task, classes, datatype):
    assert v2_protocol.label_datatype(bundle(task, classes)) == datatype


@pytest.mark.parametrize(
    ("classes", "raw", "labels"),
    [
        ([0, 7], np.array([1, 0]), [7, 0]),
        ([False, True], np.array([1, 1]), [True, True]),
        (["basic", "premium"], np.array([0, 1]), ["basic", "premium"]),
    ],
)
def test_binary_answers_read_back_by_tritonclient(classes, raw, labels):
    wanted = [v2_protocol.Output("label", True), v2_protocol.Output("probabilities", True)]
    proba = np.array([[0.25, 0.75], [0.5, 0.5]])
    body, header = v2_protocol.answer("m", "3", "r", wanted, bundle(classes=classes), raw, proba)
    result = triton.InferResult.from_response_body(body, header_length=header)
    decoded = result.as_numpy("label").tolist()
    assert [v.decode() if isinstance(v, bytes) else v for v in decoded] == labels
    assert result.as_numpy("probabilities").tolist() == proba.tolist()
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == ("m", "3", "r")


def test_a_json_answer_has_its_data_and_no_header_length():
    wanted = [v2_protocol.Output("label", False)]
    body, header = v2_protocol.answer(
        "m", "1", None, wanted, bundle("regression"), np.array([1.5, -2.0]), None
    )
    assert header is None
    assert json.loads(body) == {
        "model_name": "m",
        "model_version": "1",
        "outputs": [{"name": "label", "datatype": "FP64", "shape": [2], "data": [1.5, -2.0]}],
    }


def binary_request(tensors: dict[str, tuple[np.ndarray, str]]):
    inputs = []
    for name, (values, datatype) in tensors.items():
        tensor = triton.InferInput(name, list(values.shape), datatype)
        tensor.set_data_from_numpy(values)
        inputs.append(tensor)
    body, size = triton.InferenceServerClient.generate_request_body(inputs)
    return v2_protocol.decode_request(body[:size]), memoryview(body)[size:]


def test_binary_inputs_become_the_model_columns():
    parsed, binary = binary_request(
        {
            "age": (np.array([30, 70], dtype=np.int32), "INT32"),
            "city": (np.array(["Paris", "Lyon"], dtype=object), "BYTES"),
            "member": (np.array([True, False]), "BOOL"),
        }
    )
    columns = v2_protocol.model_input(parsed, SCHEMA, binary)
    assert columns["age"].tolist() == [30.0, 70.0] and columns["age"].dtype == np.float64
    assert columns["city"].tolist() == ["Paris", "Lyon"]
    assert columns["member"].tolist() == ["True", "False"]
    assert v2_protocol.requested_outputs(parsed, bundle(classes=["a", "b"])) == [
        v2_protocol.Output("label", True)  # tritonclient asks for binary outputs by default
    ]


def test_missing_values_from_json_and_from_binary_floats():
    parsed = request(
        inputs=[
            {"name": "age", "shape": [2], "datatype": "FP64", "data": [None, 3]},
            {"name": "city", "shape": [2, 1], "datatype": "BYTES", "data": [["Paris"], [None]]},
            {"name": "member", "shape": [2], "datatype": "BOOL", "data": [None, True]},
        ]
    )
    columns = v2_protocol.model_input(parsed, SCHEMA)
    assert np.isnan(columns["age"][0]) and columns["age"][1] == 3.0
    assert columns["city"][0] == "Paris" and np.isnan(columns["city"][1])
    assert np.isnan(columns["member"][0]) and columns["member"][1] == "True"
    numeric = [{"name": "a", "type": "number"}, {"name": "b", "type": "number"}]
    parsed, binary = binary_request({"x": (np.array([[1.0, np.nan]]), "FP64")})
    columns = v2_protocol.model_input(parsed, numeric, binary)
    assert columns["a"].tolist() == [1.0] and np.isnan(columns["b"][0])


@pytest.mark.parametrize(
    ("tensors", "tail", "message"),
    [
        (
            {"age": (np.array([np.inf]), "FP64")},
            b"",
            "input 'age' has an infinite number at element 0",
        ),
        (
            {"age": (np.array([1.0]), "FP64")},
            b"\x00",
            "the body has 9 bytes after its JSON but the inputs' binary_data_size parameters "
            "add up to 8",
        ),
    ],
)
def test_binary_refusals(tensors, tail, message):
    numeric = [{"name": "age", "type": "number"}]
    parsed, binary = binary_request(tensors)
    with pytest.raises(BadRequest) as refused:
        v2_protocol.model_input(parsed, numeric, memoryview(binary.tobytes() + tail))
    assert refused.value.message == message


def test_bytes_elements_are_read_whole_or_refused():
    text = [{"name": "city", "type": "string"}]
    whole = serialize_byte_tensor(np.array([b"Paris", b"Lyon"], dtype=object)).item()
    for data, message in (
        (whole[:-1], "input 'city': BYTES element 1 says 4 bytes, more than are left"),
        (whole[:9], "input 'city': its binary data ends after 1 of 2 BYTES elements"),
        (whole + b"\x00" * 4, "input 'city': its binary data holds more than its 2 BYTES elements"),
        (b"\x01\x00\x00\x00\xff" + whole[9:], "input 'city': BYTES element 0 is not UTF-8 text"),
    ):
        parsed = request(
            inputs=[
                {
                    "name": "city",
                    "shape": [2],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(data)},
                }
            ]
        )
        with pytest.raises(BadRequest) as refused:
            v2_protocol.model_input(parsed, text, memoryview(data))
        assert refused.value.message == message


def test_rows_are_bounded_before_any_value_is_read():
    numeric = [{"name": "age", "type": "number"}]
    parsed = request(inputs=[{"name": "age", "shape": [200_000], "datatype": "FP64", "data": []}])
    with pytest.raises(TooLarge):
        v2_protocol.model_input(parsed, numeric)


def test_metadata_lists_columns_and_outputs_with_the_class_order():
    fitted = bundle(classes=["basic", "premium"])
    fitted.pipeline = type("WithProba", (), {"predict_proba": None})()
    metadata = v2_protocol.model_metadata("m", ["1"], "sklearn_joblib", fitted, {"age": "integer"})
    assert [(t["name"], t["datatype"]) for t in metadata["inputs"]] == [
        ("age", "INT64"),
        ("city", "BYTES"),
        ("member", "BOOL"),
    ]
    assert metadata["outputs"][1] == {
        "name": "probabilities",
        "datatype": "FP64",
        "shape": [-1, 2],
        "parameters": {"classes": '["basic", "premium"]'},
    }
