"""The Open Inference Protocol ("V2") of KServe, Triton and MLServer: its requests as model
input, the model's output as its answers, and a model's metadata.

The protocol (kserve/open-inference-protocol, ``inference_rest.md``) sends
*tensors*: each a name, a shape, a datatype and its data in row-major order.
A model here takes named columns, so a request is read in one of two ways:

* **one input per column**, as MLServer's ``pd`` content type does: each named
  for a training column, of shape ``[n]`` (or ``[n, 1]``), numbers in any
  ``INT*``/``UINT*``/``FP*`` datatype, text as ``BYTES``, a boolean column as
  ``BOOL`` (or its text, ``BYTES``); ``null`` is a missing value, as in the
  native JSON;
* **one 2-D tensor** ``[n, columns]`` for a model whose columns are all
  numbers, its columns in the model's order (:func:`model_metadata` lists it),
  under any name that is not a column's.

Both end in the arrays :mod:`.inputs` makes for every other format (float64
with NaN, Python strings with NaN), so :meth:`.Predictor.run` cannot tell
where they came from. The answer names ``label`` (the class, or the value) and,
for a classifier asked for it, ``probabilities`` (``FP64 [n, classes]``, class
order in its ``parameters``).

Triton's *binary tensor data* extension is read and written too, because
``tritonclient`` uses it by default: the request's JSON is the first
``Inference-Header-Content-Length`` bytes of the body and each input with a
``binary_data_size`` parameter takes its bytes from what follows, in order
(little-endian; ``BYTES`` elements each a 4-byte length and the bytes; ``BOOL``
one byte). Outputs asked for with ``binary_data`` (or all of them, with the
request's ``binary_data_output``) are answered the same way.

This module knows nothing of Flask: :mod:`mlservice.api.v2` reads the HTTP
request and hands over bytes.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import numpy as np
import pandas as pd

from ..bodies import Body
from ..errors import BadRequest, TooLarge
from ..store.bundles import ColumnType, ModelBundle, SchemaColumn, Task
from . import inputs

#: The protocol's datatypes this service reads, each with its little-endian numpy type.
NUMPY_TYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("u1"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
INTEGERS = frozenset(name for name in NUMPY_TYPES if "INT" in name)
FLOATS = frozenset({"FP16", "FP32", "FP64"})
#: What a number column takes.
NUMBERS = INTEGERS | FLOATS
BOOL = "BOOL"
BYTES = "BYTES"
FP64 = "FP64"
INT64 = "INT64"

#: The model's outputs, by name.
LABEL = "label"
PROBABILITIES = "probabilities"

#: Extensions this server speaks, for the server metadata.
EXTENSIONS = ("binary_tensor_data",)
#: How a boolean column's values read as text: what training saw (``str(True)``).
_BOOL_TEXT = {True: "True", False: "False"}
_NONE = type(None)
_INTEGER_TYPES = frozenset({int, _NONE})
_NUMBER_TYPES = frozenset({int, float, _NONE})
_TEXT_TYPES = frozenset({str, _NONE})
_BOOL_TYPES = frozenset({bool, _NONE})

#: The protocol's "$parameters": name -> a string, number or boolean.
Parameters = dict[str, Any]


class RequestInput(Body):
    """One input tensor: ``$request_input`` (``data`` absent when it comes as binary data)."""

    name: str
    shape: list[Annotated[int, msgspec.Meta(ge=0)]]
    datatype: str
    parameters: Parameters | None = None
    data: list[Any] | None = None


class RequestOutput(Body):
    """An output asked for: ``$request_output``."""

    name: str
    parameters: Parameters | None = None


class InferenceRequest(Body):
    """``$inference_request``."""

    inputs: list[RequestInput]
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[RequestOutput] | None = None

    example = '{"inputs": [{"name": "<column>", "shape": [1], "datatype": "FP64", "data": [1.5]}]}'


_DECODER = msgspec.json.Decoder(InferenceRequest)


@dataclass(frozen=True)
class Output:
    """An output to answer with, and whether as binary data."""

    name: str
    binary: bool


# --- datatypes --------------------------------------------------------------------------------


def is_boolean(column: SchemaColumn) -> bool:
    """Whether a text column holds booleans: training saw only ``True`` and ``False``."""
    categories = column.get("categories") or []
    return bool(categories) and set(categories) <= {"True", "False"}


def input_datatype(column: SchemaColumn, profiled: str | None = None) -> str:
    """The datatype the metadata gives a column: ``profiled`` is its data set's dtype, when
    known (``integer`` makes ``INT64``; a number column otherwise ``FP64``)."""
    if column["type"] == ColumnType.NUMBER:
        return INT64 if profiled == "integer" else FP64
    return BOOL if profiled == "boolean" or is_boolean(column) else BYTES


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def label_datatype(bundle: ModelBundle) -> str:
    """The datatype of ``label``: the classes' (``BYTES`` for text), ``FP64`` for a regressor."""
    if bundle.task != Task.CLASSIFICATION or not bundle.classes:
        return FP64
    kinds = {type(_plain(label)) for label in bundle.classes}
    if kinds <= {bool}:
        return BOOL
    if kinds <= {int}:
        return INT64
    if kinds <= {int, float}:
        return FP64
    return BYTES


def gives_probabilities(bundle: ModelBundle) -> bool:
    """Whether the model has a ``probabilities`` output: a classifier with ``predict_proba``."""
    return bundle.task == Task.CLASSIFICATION and hasattr(bundle.pipeline, "predict_proba")


def _shape_text(shape: list[int]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _expected(column: SchemaColumn) -> str:
    """A column's input as the messages name it: ``'age' (FP64, [-1])``."""
    return f"{column['name']!r} ({input_datatype(column)}, [-1])"


# --- metadata ---------------------------------------------------------------------------------


def model_metadata(
    name: str,
    versions: list[str],
    platform: str,
    bundle: ModelBundle,
    profiled: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``$metadata_model_response``: an input per column, ``label`` and maybe ``probabilities``.

    ``profiled``: column -> its data set's dtype, when the data set is known.
    """
    profiled = profiled or {}
    label = {"name": LABEL, "datatype": label_datatype(bundle), "shape": [-1]}
    outputs: list[dict[str, Any]] = [label]
    if gives_probabilities(bundle):
        outputs.append(probabilities_metadata(bundle))
    return {
        "name": name,
        "versions": versions,
        "platform": platform,
        "inputs": [
            {
                "name": column["name"],
                "datatype": input_datatype(column, profiled.get(column["name"])),
                "shape": [-1],
            }
            for column in bundle.schema
        ],
        "outputs": outputs,
    }


def probabilities_metadata(bundle: ModelBundle) -> dict[str, Any]:
    """The ``probabilities`` tensor's metadata, with the class order in its parameters."""
    classes = bundle.classes or []
    return {
        "name": PROBABILITIES,
        "datatype": FP64,
        "shape": [-1, len(classes)],
        "parameters": class_parameters(bundle),
    }


def class_parameters(bundle: ModelBundle) -> Parameters:
    """The class order of ``probabilities``' columns: a parameter's value is a string, number
    or boolean, so the list is written as a JSON array in a string."""
    return {"classes": json.dumps([_plain(label) for label in bundle.classes or []])}


# --- requests ---------------------------------------------------------------------------------


def decode_request(header: bytes) -> InferenceRequest:
    """The request's JSON as an :class:`InferenceRequest`; 400 naming what does not fit."""
    containers = header.count(b"[") + header.count(b"{")  # an upper bound: brackets in text
    if containers > _MAX_CONTAINERS:
        raise TooLarge(
            f"the inference request holds more than {_MAX_CONTAINERS} arrays and objects; send "
            f"at most {inputs.MAX_RECORDS} rows per request, each input's data as a flat list"
        )
    try:
        return _DECODER.decode(header)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"the inference request {_explain(str(exc))}") from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"the inference request is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("the inference request nests arrays and objects too deep") from None


#: The most arrays and objects a request's JSON may hold (as for a native JSON body).
_MAX_CONTAINERS = 4 * inputs.MAX_RECORDS + 16

#: msgspec's names for JSON types, as the messages say them.
_TYPES = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "array": "a list",
    "object": "a JSON object",
    "null": "null",
}


_EXPECTED = re.compile(r"Expected `([^`|\s]*)(?:\s*\|\s*null)?`")


def _explain(message: str) -> str:
    """msgspec's refusal in the protocol's terms: where, then what (``inputs[0].shape``)."""
    what, _, where = message.partition(" - at `")
    place = where.rstrip("`").removeprefix("$").lstrip(".")
    missing = what.removeprefix("Object missing required field `")
    if missing != what:
        field = missing.rstrip("`")
        return f"lacks {(place + '.' if place else '') + field!r}, which is required"
    unknown = what.removeprefix("Object contains unknown field `")
    if unknown != what:
        field = unknown.rstrip("`")
        return (
            f"has an unknown field {(place + '.' if place else '') + field!r}; "
            "the protocol's fields are id, parameters, inputs (name, shape, datatype, parameters, "
            "data) and outputs (name, parameters)"
        )
    expected = _EXPECTED.match(what)
    if what.startswith("Expected `int` >= 0"):
        what = "must be a dimension: an integer, 0 or more"
    elif expected and expected.group(1) in _TYPES:
        what = f"must be {_TYPES[expected.group(1)]}"
    return f"{place!r} {what}" if place else what


def binary_parts(request: InferenceRequest, binary: memoryview | None) -> list[memoryview | None]:
    """Each input's binary data (``None``: its data is in the JSON), cut from what follows the
    JSON in the body; 400 if the sizes the inputs give do not add up to it."""
    parts: list[memoryview | None] = []
    offset = 0
    for tensor in request.inputs:
        size = (tensor.parameters or {}).get("binary_data_size")
        if size is None:
            parts.append(None)
            continue
        if type(size) is not int or size < 0:
            raise BadRequest(
                f"input {tensor.name!r}: parameter 'binary_data_size' must be a byte count"
            )
        if binary is None or offset + size > len(binary):
            raise BadRequest(
                f"input {tensor.name!r} says its binary data is {size} bytes, more than the body "
                "holds after the JSON (Inference-Header-Content-Length gives the JSON's length)"
            )
        if tensor.data is not None:
            raise BadRequest(f"input {tensor.name!r} has both 'data' and binary data: send one")
        parts.append(binary[offset : offset + size])
        offset += size
    if binary is not None and offset != len(binary):
        raise BadRequest(
            f"the body has {len(binary)} bytes after its JSON but the inputs' binary_data_size "
            f"parameters add up to {offset}"
        )
    return parts


def model_input(
    request: InferenceRequest, schema: list[SchemaColumn], binary: memoryview | None = None
) -> dict[str, np.ndarray]:
    """The model's input columns from the request's inputs (see the module's docstring);
    400 naming the input, the datatype or shape it needs."""
    tensors = request.inputs
    by_name = {column["name"]: column for column in schema}
    if binary is None and len(tensors) == len(schema):
        row = _one_row(tensors, by_name)
        if row is not None and len(row) == len(schema):
            return {column["name"]: row[column["name"]] for column in schema}
    parts = binary_parts(request, binary)
    if len(tensors) == 1 and tensors[0].name not in by_name:
        return _tensor_columns(tensors[0], parts[0], schema)
    _check_names([tensor.name for tensor in tensors], schema, by_name)
    columns: dict[str, np.ndarray] = {}
    rows = -1
    for tensor, part in zip(tensors, parts, strict=True):
        count = _column_rows(tensor)
        if rows < 0:
            inputs.check_count(count, empty=f"input {tensor.name!r} has shape [0]")
            rows = count
        elif count != rows:
            raise BadRequest(
                f"input {tensor.name!r} has {count} rows (shape {_shape_text(tensor.shape)}) and "
                f"input {tensors[0].name!r} {rows}: every input holds one value per row"
            )
        columns[tensor.name] = _column(tensor, part, by_name[tensor.name], count)
    return {column["name"]: columns[column["name"]] for column in schema}


def _one_row(
    tensors: list[RequestInput], by_name: dict[str, SchemaColumn]
) -> dict[str, np.ndarray] | None:
    """The common request, one row of plain JSON values, with no more work than the native
    JSON route's; ``None`` for anything else, which :func:`model_input` reads (and refuses)
    the long way."""
    columns = {}
    for tensor in tensors:
        column = by_name.get(tensor.name)
        data = tensor.data
        if column is None or tensor.shape != [1] or data is None or len(data) != 1:
            return None
        value, datatype = data[0], tensor.datatype
        kind = type(value)
        if column["type"] == ColumnType.NUMBER:
            if kind is float and datatype in FLOATS and math.isfinite(value):
                columns[tensor.name] = np.array([value])
            elif kind is int and datatype in NUMBERS and abs(value) < 2**53:
                columns[tensor.name] = np.array([float(value)])
            else:
                return None
        elif kind is str and datatype == BYTES:
            text = np.empty(1, dtype=object)
            text[0] = value
            columns[tensor.name] = text
        else:
            return None
    return columns


def _check_names(
    names: list[str], schema: list[SchemaColumn], by_name: dict[str, SchemaColumn]
) -> None:
    """Refuse inputs that are not the model's columns, repeat one, or leave one out."""
    if len(names) == len(by_name) and by_name.keys() == set(names):
        return  # the common request: every column once
    if not names:
        raise BadRequest(
            "the request has no inputs; send one per column: "
            + ", ".join(_expected(column) for column in schema)
        )
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise BadRequest(
            f"input(s) {', '.join(map(repr, unknown))} are not columns of the model; it takes "
            + ", ".join(_expected(column) for column in schema)
        )
    if len(set(names)) < len(names):
        twice = sorted({name for name in names if names.count(name) > 1})
        raise BadRequest(f"input(s) {', '.join(map(repr, twice))} are sent more than once")
    given = set(names)
    missing = [column for column in schema if column["name"] not in given]
    if missing:
        raise BadRequest(
            f"the request lacks input(s) {', '.join(_expected(column) for column in missing)}; "
            "send one input per column (a missing value as null)"
        )


def _column_rows(tensor: RequestInput) -> int:
    """The rows of a column's input: its shape is ``[n]`` or ``[n, 1]``."""
    shape = tensor.shape
    if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
        return shape[0]
    raise BadRequest(
        f"input {tensor.name!r} has shape {_shape_text(shape)}; a column's input has shape [n] "
        "(or [n, 1]) for n rows"
    )


def _column(
    tensor: RequestInput, part: memoryview | None, column: SchemaColumn, rows: int
) -> np.ndarray:
    """One column's array from its input, checked against the column's type."""
    name, datatype = tensor.name, tensor.datatype
    if column["type"] == ColumnType.NUMBER:
        if datatype not in NUMBERS:
            raise BadRequest(
                f"input {name!r} has datatype {datatype!r}; the column takes numbers: "
                f"{input_datatype(column)} (or another INT, UINT or FP datatype), shape [-1]"
            )
        if part is not None:
            return _binary_numbers(name, datatype, part, rows)
        return _numbers(name, datatype, _flat(tensor, rows))
    if datatype == BOOL and is_boolean(column):
        if part is not None:
            return _as_bool_text(_binary_array(name, datatype, part, rows).astype(bool))
        return _bool_text(name, _flat(tensor, rows))
    if datatype != BYTES:
        takes = "BOOL (or its text, BYTES)" if is_boolean(column) else "text: BYTES"
        raise BadRequest(
            f"input {name!r} has datatype {datatype!r}; the column takes {takes}, shape [-1]"
        )
    if part is not None:
        return _binary_texts(name, part, rows)
    return _texts(name, _flat(tensor, rows))


def _tensor_columns(
    tensor: RequestInput, part: memoryview | None, schema: list[SchemaColumn]
) -> dict[str, np.ndarray]:
    """The columns of a 2-D tensor ``[n, columns]``, for a model whose columns are numbers."""
    width = len(schema)
    shape = tensor.shape
    per_column = ", ".join(_expected(column) for column in schema)
    if any(column["type"] != ColumnType.NUMBER for column in schema):
        raise BadRequest(
            f"input {tensor.name!r} is not a column of the model; it takes one input per "
            f"column: {per_column}"
        )
    order = ", ".join(repr(column["name"]) for column in schema)
    if len(shape) != 2 or shape[1] != width:
        raise BadRequest(
            f"input {tensor.name!r} is not a column of the model, nor a 2-D tensor of its "
            f"columns: it has shape {_shape_text(shape)}. Send one input per column "
            f"({per_column}), or one input of shape [n, {width}] with the columns in the order "
            f"{order}"
        )
    if tensor.datatype not in NUMBERS:
        raise BadRequest(
            f"input {tensor.name!r} has datatype {tensor.datatype!r}; the model's columns take "
            "numbers: FP64 (or another INT, UINT or FP datatype)"
        )
    rows = shape[0]
    inputs.check_count(rows, empty=f"input {tensor.name!r} has shape [0, {width}]")
    if part is not None:
        flat = _binary_numbers(tensor.name, tensor.datatype, part, rows * width)
    else:
        flat = _numbers(tensor.name, tensor.datatype, _flat(tensor, rows * width))
    table = flat.reshape(rows, width)
    return {column["name"]: table[:, index] for index, column in enumerate(schema)}


# --- values from JSON ---------------------------------------------------------------------------


def _flat(tensor: RequestInput, count: int) -> list[Any]:
    """The input's data as one flat list of ``count`` values: as sent, or its rows (the
    protocol allows a tensor's natural nesting, ``[[1, 2], [3, 4]]``)."""
    data = tensor.data
    if data is None:
        raise BadRequest(
            f"input {tensor.name!r} has no 'data' (and no 'binary_data_size' parameter): send "
            "its values"
        )
    if data and type(data[0]) is list:
        flat = []
        for row in data:
            if type(row) is not list:
                raise BadRequest(
                    f"input {tensor.name!r}: its data mixes rows (lists) and values; send a flat "
                    "list, or one list per row"
                )
            flat.extend(row)
        data = flat
    if len(data) != count:
        raise BadRequest(
            f"input {tensor.name!r} has shape {_shape_text(tensor.shape)} ({count} values) but "
            f"{len(data)} values in its data"
        )
    return data


def _numbers(name: str, datatype: str, values: list[Any]) -> np.ndarray:
    """Numbers as float64 (``null``: NaN); an integer datatype takes integers only."""
    if len(values) == 1:  # the common request: one row
        value = values[0]
        kind = type(value)
        if kind is float and datatype in FLOATS and math.isfinite(value):
            return np.array([value])
        if kind is int and abs(value) < 2**53:
            return np.array([float(value)])
    allowed = _INTEGER_TYPES if datatype in INTEGERS else _NUMBER_TYPES
    if not allowed.issuperset(map(type, values)):
        for index, value in enumerate(values):
            if type(value) not in allowed:
                wants = "integers" if datatype in INTEGERS else "numbers"
                raise BadRequest(
                    f"input {name!r} ({datatype}) takes {wants}; element {index} is {value!r}"
                )
    try:
        return np.array(values, dtype=np.float64)  # None -> NaN
    except OverflowError:
        raise BadRequest(f"input {name!r} has a number too large for a float") from None


def _texts(name: str, values: list[Any]) -> np.ndarray:
    """Text as Python strings (``null``: NaN, what the imputer treats as missing)."""
    if len(values) == 1 and type(values[0]) is str:  # the common request: one row
        array = np.empty(1, dtype=object)
        array[0] = values[0]
        return array
    kinds = set(map(type, values))
    if not _TEXT_TYPES.issuperset(kinds):
        for index, value in enumerate(values):
            if type(value) not in _TEXT_TYPES:
                raise BadRequest(f"input {name!r} (BYTES) takes text; element {index} is {value!r}")
    array = np.empty(len(values), dtype=object)
    array[:] = values
    if _NONE in kinds:
        array[pd.isna(array)] = np.nan
    return array


def _bool_text(name: str, values: list[Any]) -> np.ndarray:
    """Booleans as the text training saw (``True``, ``False``); ``null``: NaN."""
    if not _BOOL_TYPES.issuperset(map(type, values)):
        for index, value in enumerate(values):
            if type(value) not in _BOOL_TYPES:
                raise BadRequest(
                    f"input {name!r} (BOOL) takes true or false; element {index} is {value!r}"
                )
    array = np.empty(len(values), dtype=object)
    array[:] = [np.nan if value is None else _BOOL_TEXT[value] for value in values]
    return array


def _as_bool_text(values: np.ndarray) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = [_BOOL_TEXT[bool(value)] for value in values]
    return array


# --- values from binary tensor data -------------------------------------------------------------


def _binary_array(name: str, datatype: str, part: memoryview, count: int) -> np.ndarray:
    """``count`` fixed-size elements of ``datatype`` from an input's binary data."""
    kind = NUMPY_TYPES[datatype]
    if len(part) != count * kind.itemsize:
        raise BadRequest(
            f"input {name!r}: {count} {datatype} values are {count * kind.itemsize} bytes of "
            f"binary data, not {len(part)}"
        )
    return np.frombuffer(part, dtype=kind)


def _binary_numbers(name: str, datatype: str, part: memoryview, count: int) -> np.ndarray:
    """Binary numbers as float64 (NaN: missing); an infinity is refused."""
    array = _binary_array(name, datatype, part, count).astype(np.float64)
    infinite = np.flatnonzero(np.isinf(array))
    if infinite.size:
        raise BadRequest(f"input {name!r} has an infinite number at element {int(infinite[0])}")
    return array


def _binary_texts(name: str, part: memoryview, count: int) -> np.ndarray:
    """``count`` BYTES elements (each a 4-byte little-endian length, then the bytes) as text."""
    values = np.empty(count, dtype=object)
    data = part.tobytes()
    offset, end = 0, len(data)
    for index in range(count):
        if offset + 4 > end:
            raise BadRequest(
                f"input {name!r}: its binary data ends after {index} of {count} BYTES elements"
            )
        length = int.from_bytes(data[offset : offset + 4], "little")
        start, offset = offset + 4, offset + 4 + length
        if offset > end:
            raise BadRequest(
                f"input {name!r}: BYTES element {index} says {length} bytes, more than are left"
            )
        try:
            values[index] = data[start:offset].decode()
        except UnicodeDecodeError:
            raise BadRequest(f"input {name!r}: BYTES element {index} is not UTF-8 text") from None
    if offset != end:
        raise BadRequest(
            f"input {name!r}: its binary data holds more than its {count} BYTES elements"
        )
    return values


# --- outputs ------------------------------------------------------------------------------------


def requested_outputs(request: InferenceRequest, bundle: ModelBundle) -> list[Output]:
    """The outputs to answer with (``label`` when none is asked for), each as JSON or binary."""
    binary_default = (request.parameters or {}).get("binary_data_output", False)
    if type(binary_default) is not bool:
        raise BadRequest("parameter 'binary_data_output' must be true or false")
    if request.outputs is None:
        return [Output(LABEL, binary_default)]
    names = [LABEL] + ([PROBABILITIES] if gives_probabilities(bundle) else [])
    wanted: list[Output] = []
    for asked in request.outputs:
        if asked.name not in names:
            raise BadRequest(_no_such_output(asked.name, bundle, names))
        if any(output.name == asked.name for output in wanted):
            raise BadRequest(f"output {asked.name!r} is asked for more than once")
        parameters = asked.parameters or {}
        if "classification" in parameters:
            raise BadRequest(
                f"output {asked.name!r}: parameter 'classification' (Triton's classification "
                "extension) is not supported; ask for 'probabilities'"
            )
        binary = parameters.get("binary_data", binary_default)
        if type(binary) is not bool:
            raise BadRequest(
                f"output {asked.name!r}: parameter 'binary_data' must be true or false"
            )
        wanted.append(Output(asked.name, binary))
    return wanted


def _no_such_output(name: str, bundle: ModelBundle, names: list[str]) -> str:
    if name == PROBABILITIES:
        why = "a regressor" if bundle.task != Task.CLASSIFICATION else "without predict_proba"
        return (
            f"the model ({bundle.estimator}, {why}) has no output 'probabilities'; ask for 'label'"
        )
    return f"the model has no output {name!r}; it gives {' and '.join(map(repr, names))}"


def answer(
    name: str,
    version: str,
    request_id: str | None,
    wanted: list[Output],
    bundle: ModelBundle,
    raw: np.ndarray,
    proba: np.ndarray | None,
) -> tuple[bytes, int | None]:
    """``$inference_response`` as bytes, and the length of its JSON when binary outputs follow
    it (the ``Inference-Header-Content-Length`` of the answer), else ``None``."""
    outputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    rows = len(raw)
    for output in wanted:
        if output.name == LABEL:
            datatype = label_datatype(bundle)
            values = _labels(bundle, raw, datatype)
            tensor: dict[str, Any] = {"name": LABEL, "datatype": datatype, "shape": [rows]}
        else:
            assert proba is not None  # asked for, so computed
            values = np.asarray(proba, dtype=np.float64)
            tensor = {
                "name": PROBABILITIES,
                "datatype": FP64,
                "shape": [rows, values.shape[1]],
                "parameters": class_parameters(bundle),
            }
        if output.binary:
            blob = _binary(values, tensor["datatype"])
            tensor["parameters"] = tensor.get("parameters", {}) | {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = values.ravel().tolist()
        outputs.append(tensor)
    body: dict[str, Any] = {"model_name": name, "model_version": version}
    if request_id is not None:
        body["id"] = request_id
    body["outputs"] = outputs
    header = msgspec.json.encode(body)
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)


def _labels(bundle: ModelBundle, raw: np.ndarray, datatype: str) -> np.ndarray:
    """``label``'s values: the class of each row (text for ``BYTES``), or the value."""
    if bundle.task != Task.CLASSIFICATION or not bundle.classes:
        return np.asarray(raw, dtype=np.float64)
    classes = np.empty(len(bundle.classes), dtype=object)
    plain = [_plain(label) for label in bundle.classes]
    classes[:] = [str(label) for label in plain] if datatype == BYTES else plain
    return classes[raw.astype(int)]


def _binary(values: np.ndarray, datatype: str) -> bytes:
    """Values as binary tensor data of ``datatype``."""
    if datatype == BYTES:
        parts = []
        for value in values.ravel():
            encoded = str(value).encode()
            parts.append(len(encoded).to_bytes(4, "little"))
            parts.append(encoded)
        return b"".join(parts)
    return np.asarray(values.astype(NUMPY_TYPES[datatype]), order="C").tobytes()
