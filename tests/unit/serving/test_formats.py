"""Prediction bodies: every shape and format gives the same arrays; each refusal says why."""

import io
import json
import math
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from mlservice.config import LimitsSettings
from mlservice.errors import ServiceError
from mlservice.serving import formats, inputs, outputs
from mlservice.store.bundles import ModelBundle

SCHEMA = [
    {"name": "age", "type": "number"},
    {"name": "city", "type": "string", "categories": ["Lyon", "Paris"]},
]
RECORDS = [{"age": 3, "city": "007"}, {"age": None, "city": None}, {"age": 2.5, "city": "Lyon"}]
#: What every shape and format of RECORDS must give.
AGES = [3.0, math.nan, 2.5]
CITIES = ["007", math.nan, "Lyon"]


def read(
    data: bytes, media_type: str, depth: int = 32, extras: inputs.ExtraColumns | None = None
) -> dict[str, np.ndarray]:
    return formats.read_body(data, media_type, SCHEMA, LimitsSettings(max_json_depth=depth), extras)


def assert_expected(columns, ages=AGES, cities=CITIES):
    assert list(columns) == ["age", "city"]
    assert columns["age"].dtype == np.float64
    np.testing.assert_array_equal(columns["age"], np.array(ages, dtype=np.float64))
    assert columns["city"].dtype == object
    got = columns["city"].tolist()
    assert len(got) == len(cities)
    for value, want in zip(got, cities, strict=True):
        if isinstance(want, str):
            assert type(value) is str and value == want
        else:
            assert isinstance(value, float) and math.isnan(value)


def refusal(data: bytes, media_type: str, depth: int = 32) -> tuple[int, str]:
    with pytest.raises(ServiceError) as caught:
        read(data, media_type, depth)
    return caught.value.status, caught.value.message


def table() -> pa.Table:
    return pa.table(
        {
            "age": pa.array([3, None, 2.5], pa.float64()),
            "city": pa.array(["007", None, "Lyon"], pa.string()),
        }
    )


def parquet_bytes(data: pa.Table, **options) -> bytes:
    sink = io.BytesIO()
    pq.write_table(data, sink, **options)
    return sink.getvalue()


def arrow_bytes(data: pa.Table, file: bool = False) -> bytes:
    sink = pa.BufferOutputStream()
    with (ipc.new_file if file else ipc.new_stream)(sink, data.schema) as writer:
        writer.write_table(data)
    return sink.getvalue().to_pybytes()


# --- JSON shapes --------------------------------------------------------------------------

COLUMNAR = {"age": [3, None, 2.5], "city": ["007", None, "Lyon"]}
ROWS = [[3, "007"], [None, None], [2.5, "Lyon"]]


@pytest.mark.parametrize(
    "body",
    [
        RECORDS,
        {"instances": RECORDS},
        {"dataframe_records": RECORDS},
        {"inputs": RECORDS},
        {"dataframe_split": {"columns": ["age", "city"], "data": ROWS}},
        {"dataframe_split": {"columns": ["city", "age"], "data": [r[::-1] for r in ROWS]}},
        {"dataframe_split": {"index": [7, 8, 9], "columns": ["age", "city"], "data": ROWS}},
        {"instances": ROWS},
        {"inputs": ROWS},
        {"instances": COLUMNAR},
        {"inputs": COLUMNAR},
        {"columns": COLUMNAR},
        {"columns": {"city": COLUMNAR["city"], "age": COLUMNAR["age"]}},
    ],
)
def test_every_json_shape_gives_the_same_arrays(body):
    assert_expected(read(orjson.dumps(body), formats.JSON))


def test_one_record_is_one_row():
    assert_expected(read(b'{"age": 3, "city": "007"}', formats.JSON), [3.0], ["007"])


def test_json_nan_is_refused_like_infinity():
    """orjson refuses NaN; the standard library reads it, and the column check names it."""
    assert refusal(b'[{"age": 1, "city": "a"}, {"age": NaN, "city": "b"}]', formats.JSON) == (
        422,
        "column 'age' has a non-finite number in record 1",
    )
    assert refusal(b'{"age": 1e400, "city": "a"}', formats.JSON) == (
        422,
        "column 'age' has a non-finite number in record 0",
    )


@pytest.mark.parametrize(
    "data, status, message",
    [
        (b"", 400, "the request body is empty; send JSON"),
        (
            b'{"age": 1,',
            400,
            "the request body is not valid JSON: Expecting property name enclosed in double "
            "quotes at line 1 column 11",
        ),
        (b'{"age": "\xff"}', 400, "the request body is not UTF-8 text"),
        (b"[" * 100_000, 422, formats.too_deep(32).message),
        (b"[" * 33 + b"]" * 33, 422, formats.too_deep(32).message),
        (b"3", 400, f"body must be {inputs.SHAPES}"),
        (b"[]", 400, "no records to predict: the list is empty"),
        (b"[1, 2]", 400, "record 0 is a int, not a JSON object"),
        (b'{"instances": "x"}', 400, "'instances' must be a list of records, not a str"),
        (
            b'{"dataframe_records": {}}',
            400,
            "'dataframe_records' must be a list of records, not a dict",
        ),
        (b'{"instances": []}', 400, "no records to predict: the list is empty"),
        (
            b'{"dataframe_split": {"columns": ["age", "city"], "data": [[1, "a"]]}, "params": {}}',
            400,
            "a body with 'dataframe_split' may have no other key, not 'params' (MLflow's "
            "'params' are not supported; ask for probabilities with ?probabilities=true). "
            "A record with a column named 'dataframe_split' goes in a list: [record]",
        ),
        (
            b'{"dataframe_split": [[1, "a"]]}',
            400,
            '"dataframe_split" must be {"columns": [names], "data": [[row], ...]} '
            '(with an optional "index")',
        ),
        (
            b'{"dataframe_split": {"columns": ["age", "city"], "data": [[1, "a"]], "x": 1}}',
            400,
            '"dataframe_split" has unknown key(s) \'x\'; it takes "columns", "data" and "index"',
        ),
        (
            b'{"dataframe_split": {"columns": [1, 2], "data": [[1, "a"]]}}',
            400,
            '"dataframe_split" "columns" must be a list of column names (strings)',
        ),
        (
            b'{"dataframe_split": {"columns": ["age", "city"]}}',
            400,
            '"dataframe_split" needs "data": a list of rows, each a list of values',
        ),
        (
            b'{"dataframe_split": {"columns": ["age", "city"], "data": []}}',
            400,
            "no records to predict: the list is empty",
        ),
        (
            b'{"dataframe_split": {"columns": ["age", "city"], "data": [[1, "a"], [2]]}}',
            400,
            "dataframe_split row 1 has 1 values; each row must be a list of 2 values, one per "
            "column in the order 'age', 'city'",
        ),
        (
            b'{"instances": [[1, "a"], {"age": 1}]}',
            400,
            "instances row 1 has a dict; each row must be a list of 2 values, one per column "
            "in the order 'age', 'city'",
        ),
        (
            b'{"dataframe_split": {"columns": ["age"], "data": [[1]]}}',
            422,
            "the input lacks column(s) 'city'; send every column the model expects, a missing "
            "value as null (JSON) or an empty cell (CSV)",
        ),
        (
            b'{"dataframe_split": {"columns": ["age", "city", "age"], "data": [[1, "a", 2]]}}',
            422,
            "the input has column(s) 'age' more than once",
        ),
        (
            b'{"columns": [[1, "a"]]}',
            400,
            '"columns" must map each column to its list of values: {"columns": {"<column>": '
            '[values]}}; for column names with rows of values send {"dataframe_split": '
            '{"columns": [names], "data": [[row], ...]}}',
        ),
        (
            b'{"columns": {"age": 1, "city": ["a"]}}',
            400,
            "column 'age' must be a list of values, not a int",
        ),
        (
            b'{"columns": {"age": [1, 2], "city": ["a"]}}',
            400,
            "every column must have as many values as the others: 'age' has 2, 'city' has 1",
        ),
        (b'{"columns": {"age": [], "city": []}}', 400, "no records to predict: the list is empty"),
        (
            b'{"columns": {"age": [1, "2"], "city": ["a", "b"]}}',
            422,
            "column 'age' expects a number; record 1 has '2'",
        ),
        (
            b'{"columns": {"age": [1, true], "city": ["a", "b"]}}',
            422,
            "column 'age' expects a number; record 1 has True",
        ),
        (
            b'{"inputs": {"age": [1, 2], "city": ["a", 7]}}',
            422,
            "column 'city' expects a string; record 1 has 7",
        ),
        (
            b'{"age": 1}',
            422,
            "record 0 lacks column(s) 'city'; send null for a missing value",
        ),
    ],
)
def test_json_refusals_name_the_problem(data, status, message):
    assert refusal(data, formats.JSON) == (status, message)


def test_a_big_integer_is_a_float_as_before():
    columns = read(orjson.dumps({"columns": {"age": [2**63 + 1], "city": ["a"]}}), formats.JSON)
    assert columns["age"].tolist() == [float(2**63 + 1)]
    status, message = refusal(b'{"age": ' + b"9" * 400 + b', "city": "a"}', formats.JSON)
    assert (status, message) == (422, "column 'age' has a number too large for a float")


def test_too_many_records_are_413_in_every_shape():
    count = inputs.MAX_RECORDS + 1
    message = f"too many records ({count}); send at most {inputs.MAX_RECORDS} per request"
    bodies = [
        {"columns": {"age": [1] * count, "city": ["a"] * count}},
        {"dataframe_split": {"columns": ["age", "city"], "data": [[1, "a"]] * count}},
        [{"age": 1, "city": "a"}] * count,
    ]
    for body in bodies:
        assert refusal(orjson.dumps(body), formats.JSON) == (413, message)
    csv = b"age,city\n" + b"1,a\n" * count
    assert refusal(csv, formats.CSV) == (413, message)
    big = pa.table({"age": pa.array([1.0] * count), "city": pa.array(["a"] * count)})
    assert refusal(parquet_bytes(big), formats.PARQUET) == (413, message)
    assert refusal(arrow_bytes(big), formats.ARROW_STREAM) == (413, message)


def test_a_deep_body_within_the_limit_is_read():
    body = json.dumps({"columns": {"age": [1], "city": ["a"]}}).encode()
    assert_expected(read(body, formats.JSON, depth=3), [1.0], ["a"])
    assert refusal(body, formats.JSON, depth=2) == (422, formats.too_deep(2).message)


# --- CSV ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"age,city\n3,007\n,\n2.5,Lyon\n",
        b"city,age\n007,3\nNA,NA\nLyon,2.5\n",  # any order; pyarrow's null spellings
        b"age;city\r\n3;007\r\n;\r\n2.5;Lyon\r\n",  # the header line tells the delimiter
        b'\xef\xbb\xbf"age","city"\n"3","007"\n,\n2.5,"Lyon"',  # BOM, quotes, no last newline
        b"age\tcity\n3\t007\n\t\n2.5\tLyon\n",
    ],
)
def test_csv_is_read_with_the_model_types(data):
    assert_expected(read(data, formats.CSV))


@pytest.mark.parametrize(
    "data, status, message",
    [
        (b"", 400, "the request body is empty; send CSV"),
        (b"age,city\n", 400, "no records to predict: the body has no rows"),
        (b"city,age\nx,1\ny,abc\n", 422, "column 'age' expects a number; row 1 has 'abc'"),
        (b"age,city\n1,a\ninf,b\n", 422, "column 'age' has a non-finite number in row 1"),
        (b"age,city\n1,\xff\n", 400, "column 'city' of the CSV body is not UTF-8 text"),
        (
            b"age,city\n1,a,3\n",
            400,
            "the CSV body cannot be read: row 0 has 3 fields where the header has 2; give "
            "every row one value per column, and quote text that holds the delimiter ','",
        ),
        (
            b"age\n1\n",
            422,
            "the input lacks column(s) 'city'; send every column the model expects, a missing "
            "value as null (JSON) or an empty cell (CSV)",
        ),
        (b"age,city,age\n1,a,2\n", 422, "the input has column(s) 'age' more than once"),
    ],
)
def test_csv_refusals_name_the_problem(data, status, message):
    assert refusal(data, formats.CSV) == (status, message)


def test_csv_column_names_must_be_utf8():
    message = "the column names of the CSV body are not UTF-8 text"
    assert refusal(b"\xff\xfe,b\n1,2\n", formats.CSV) == (400, message)
    # ... also when a value cannot be read and its column's name is looked up.
    assert refusal(b"age,city,\xff\nx,a,1\n", formats.CSV) == (400, message)


# --- Parquet and Arrow --------------------------------------------------------------------


@pytest.mark.parametrize("media_type", [formats.PARQUET, formats.PARQUET_OLD])
def test_parquet_gives_the_same_arrays(media_type):
    assert_expected(read(parquet_bytes(table()), media_type))


def test_parquet_types_are_converted():
    """Integers, dictionary-encoded text, large strings: the same arrays."""
    typed = pa.table(
        {
            "city": pa.array(["007", None, "Lyon"]).dictionary_encode(),
            "age": pa.array([3, None, 2], pa.int32()),
        }
    )
    assert_expected(read(parquet_bytes(typed), formats.PARQUET), [3.0, math.nan, 2.0])
    large = pa.table(
        {
            "age": pa.array([3, None, 2.5]),
            "city": pa.array(["007", None, "Lyon"], pa.large_string()),
        }
    )
    assert_expected(read(parquet_bytes(large), formats.PARQUET))


def test_arrow_stream_and_file_give_the_same_arrays():
    assert_expected(read(arrow_bytes(table()), formats.ARROW_STREAM))
    assert_expected(read(arrow_bytes(table(), file=True), formats.ARROW_STREAM))
    batches = pa.Table.from_batches(table().to_batches(max_chunksize=1))
    assert_expected(read(arrow_bytes(batches), formats.ARROW_STREAM))
    encoded = pa.table(
        {"age": table()["age"], "city": pa.array(["007", None, "Lyon"]).dictionary_encode()}
    )
    assert_expected(read(arrow_bytes(encoded), formats.ARROW_STREAM))


def test_a_repeated_long_string_stays_one_string():
    """A dictionary-encoded column keeps one copy of each string, not one per row (a file that
    names its Arrow types, and one that does not)."""
    rows = 500
    long = pa.table({"age": pa.array([1.0] * rows), "city": pa.array(["x" * 100_000] * rows)})
    for store_schema in (True, False):
        body = parquet_bytes(long, compression="zstd", store_schema=store_schema)
        columns = read(body, formats.PARQUET)
        assert columns["city"][0] is columns["city"][rows - 1]


@pytest.mark.parametrize(
    "data, media_type, status, message",
    [
        (
            b"not parquet at all",
            formats.PARQUET,
            400,
            "the body is not a Parquet file (its footer cannot be read); send a whole Parquet file",
        ),
        (
            b"PAR1",
            formats.PARQUET_OLD,
            400,
            "the body is not a Parquet file (its footer cannot be read); send a whole Parquet file",
        ),
        (
            b"garbage bytes here",
            formats.ARROW_STREAM,
            400,
            "the body is not an Arrow IPC stream or file (a message cannot be read); send the "
            "bytes an Arrow IPC stream writer made",
        ),
        (
            b"x",
            "text/plain",
            415,
            "cannot read a prediction body sent as 'text/plain'; send it with Content-Type "
            "application/json, text/csv, application/vnd.apache.parquet, "
            "application/x-parquet, application/vnd.apache.arrow.stream",
        ),
        (
            b"x",
            "",
            415,
            "cannot read a prediction body sent as no Content-Type; send it with Content-Type "
            "application/json, text/csv, application/vnd.apache.parquet, "
            "application/x-parquet, application/vnd.apache.arrow.stream",
        ),
        (b"", formats.PARQUET, 400, "the request body is empty; send Parquet"),
        (b"", formats.ARROW_STREAM, 400, "the request body is empty; send Arrow"),
    ],
)
def test_binary_refusals_name_the_problem(data, media_type, status, message):
    assert refusal(data, media_type) == (status, message)


@pytest.mark.parametrize("media_type", [formats.PARQUET, formats.ARROW_STREAM])
def test_binary_column_refusals(media_type):
    write = parquet_bytes if media_type == formats.PARQUET else arrow_bytes
    cases = [
        (
            pa.table({"age": pa.array(["3"]), "city": pa.array(["a"])}),
            "column 'age' expects numbers; the input has string",
        ),
        (
            pa.table({"age": pa.array([True]), "city": pa.array(["a"])}),
            "column 'age' expects numbers; the input has bool",
        ),
        (
            pa.table({"age": pa.array([1.0]), "city": pa.array([7])}),
            "column 'city' expects text; the input has int64",
        ),
        (
            pa.table({"age": pa.array([1.0, math.inf]), "city": pa.array(["a", "b"])}),
            "column 'age' has a non-finite number in row 1",
        ),
        (
            pa.table({"age": pa.array([1.0])}),
            "the input lacks column(s) 'city'; send every column the model expects, a missing "
            "value as null (JSON) or an empty cell (CSV)",
        ),
    ]
    for data, message in cases:
        assert refusal(write(data), media_type) == (422, message)
    empty = pa.table({"age": pa.array([], pa.float64()), "city": pa.array([], pa.string())})
    assert refusal(write(empty), media_type) == (400, "no records to predict: the body has no rows")


def with_bad_name(data: bytes) -> bytes:
    """A body whose column named ``QQQQ`` is renamed to bytes that are not UTF-8."""
    assert data.count(b"QQQQ") >= 1
    return data.replace(b"QQQQ", b"\xff\xfe\xfd\xfc")


@pytest.mark.parametrize(
    "data, media_type, what",
    [
        (
            parquet_bytes(table().append_column("QQQQ", pa.array([1, 2, 3])), store_schema=False),
            formats.PARQUET,
            "Parquet",
        ),
        (
            arrow_bytes(table().append_column("QQQQ", pa.array([1, 2, 3]))),
            formats.ARROW_STREAM,
            "Arrow",
        ),
        (
            arrow_bytes(table().append_column("QQQQ", pa.array([1, 2, 3])), file=True),
            formats.ARROW_STREAM,
            "Arrow",
        ),
    ],
)
def test_binary_column_names_must_be_utf8(data, media_type, what):
    assert refusal(with_bad_name(data), media_type) == (
        400,
        f"the column names of the {what} body are not UTF-8 text",
    )


@pytest.mark.parametrize("media_type", [formats.PARQUET, formats.ARROW_STREAM])
def test_binary_text_values_must_be_utf8(media_type):
    """Unlike pyarrow's CSV reader, its Parquet and Arrow readers leave text unchecked."""
    offsets = pa.py_buffer(np.array([0, 2], dtype=np.int32).tobytes())
    city = pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(b"\xff\xfe")])
    data = pa.table({"age": pa.array([1.0]), "city": city})
    write = parquet_bytes if media_type == formats.PARQUET else arrow_bytes
    message = "column 'city' has text that is not UTF-8"
    assert refusal(write(data), media_type) == (400, message)
    if media_type == formats.PARQUET:
        assert refusal(parquet_bytes(data, use_dictionary=False), media_type) == (400, message)


# --- Bounded by what a body becomes ------------------------------------------------------

MIB = 1024**2


def read_within(data: bytes, media_type: str, decoded_mb: float, schema=SCHEMA) -> None:
    formats.read_body(data, media_type, schema, LimitsSettings(max_decoded_mb=decoded_mb))


def refused_within(data: bytes, media_type: str, decoded_mb: float, schema=SCHEMA):
    with pytest.raises(ServiceError) as caught:
        read_within(data, media_type, decoded_mb, schema)
    return caught.value.status, caught.value.message


def peak_growth_mib(work, *args):
    """``work(*args)``'s result, and how far this process's peak RSS rose meanwhile (MiB, from
    the kernel's VmHWM, reset first)."""
    Path("/proc/self/clear_refs").write_text("5")
    before = _hwm_kib()
    result = work(*args)
    return result, (_hwm_kib() - before) / 1024


def _hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def repeated(rows: int, length: int, dictionary: bool = True) -> pa.Table:
    """``rows`` rows whose text is one value of ``length`` bytes (a dictionary's, or copied)."""
    value = pa.array(["x" * length])
    city = (
        pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), value)
        if dictionary
        else pa.array(["x" * length] * rows)
    )
    return pa.table({"age": pa.array([1.0] * rows), "city": city})


def compressed_arrow(data: pa.Table, rows_per_batch: int | None = None, file=False) -> bytes:
    sink = pa.BufferOutputStream()
    options = ipc.IpcWriteOptions(compression="zstd")
    with (ipc.new_file if file else ipc.new_stream)(sink, data.schema, options=options) as writer:
        for batch in data.to_batches(max_chunksize=rows_per_batch):
            writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def test_a_compressed_parquet_body_is_refused_from_its_footer():
    data = parquet_bytes(
        repeated(1000, 100_000, dictionary=False), use_dictionary=False, compression="zstd"
    )
    assert len(data) < 100_000  # 95 MiB of text in a few KB
    assert refused_within(data, formats.PARQUET, 64) == (
        413,
        "the Parquet body unpacks to 95.4 MiB, more than 64 MiB ([limits] max_decoded_mb): "
        "send fewer rows per request",
    )


def test_a_compressed_arrow_body_is_refused_before_it_is_decompressed():
    """64 MiB of text in 64 KB: refused from the message headers, so memory stays flat."""
    data = compressed_arrow(repeated(640, 100_000, dictionary=False), rows_per_batch=64)
    assert len(data) < 100_000
    for body in (data, compressed_arrow(repeated(640, 100_000, dictionary=False), file=True)):
        (status, message), growth = peak_growth_mib(refused_within, body, formats.ARROW_STREAM, 1)
        assert status == 413
        assert message.startswith("the Arrow body unpacks to ")
        assert message.endswith(
            "MiB, more than 1 MiB ([limits] max_decoded_mb): send fewer rows per request"
        )
        assert growth < 16, f"grew by {growth:.0f} MiB"


@pytest.mark.parametrize("media_type", [formats.PARQUET, formats.ARROW_STREAM])
def test_a_dictionary_repeated_in_every_row_counts_once_per_row(media_type):
    """One 100 KB value in 1,000 rows is a tiny body and 95 MiB of text for a model."""
    data = repeated(1000, 100_000)
    body = (
        parquet_bytes(data, compression="zstd", store_schema=False)  # read back as plain text
        if media_type == formats.PARQUET
        else compressed_arrow(data)
    )
    assert len(body) < 20_000
    what = formats.format_name(media_type)
    assert refused_within(body, media_type, 64) == (
        413,
        f"the {what} body becomes 95.4 MiB in memory once decoded, more than 64 MiB "
        "([limits] max_decoded_mb): send fewer rows, or shorter text, per request",
    )
    read_within(body, media_type, 96)  # 1,000 x (100,000 + 8 x (1 + 2)) bytes: 95.4 MiB


def test_a_model_that_encodes_many_categories_bounds_the_rows_of_any_body():
    """Each row becomes 8 bytes per one-hot category: counted before the model sees it."""
    wide = [{"name": "city", "type": "string", "categories": [f"c{i}" for i in range(10_000)]}]
    records = [{"city": "c1"}] * 1000  # 1,000 x 80,000 bytes = 76.3 MiB
    body = json.dumps(records).encode()
    assert refused_within(body, formats.JSON, 64, wide) == (
        413,
        "the JSON body becomes 76.3 MiB in memory once decoded, more than 64 MiB "
        "([limits] max_decoded_mb): send fewer rows, or shorter text, per request",
    )
    read_within(body, formats.JSON, 77, wide)


def test_a_number_column_sent_as_text_is_refused_before_it_is_read():
    """Read as text it would be decoded per row (only text columns stay dictionaries)."""
    data = pa.table({"age": repeated(1000, 100_000)["city"], "city": pa.array(["a"] * 1000)})
    for body, media_type in (
        (parquet_bytes(data, compression="zstd"), formats.PARQUET),
        (compressed_arrow(data), formats.ARROW_STREAM),
    ):
        refused, growth = peak_growth_mib(refused_within, body, media_type, 1)
        assert refused == (
            422,
            "column 'age' expects numbers; the input has string",
        )
        assert growth < 16


def test_a_delta_encoded_parquet_text_column_is_415():
    data = repeated(10, 10, dictionary=False)
    body = parquet_bytes(data, use_dictionary=False, column_encoding={"city": "DELTA_BYTE_ARRAY"})
    assert refused_within(body, formats.PARQUET, 64) == (
        415,
        "column 'city' of the Parquet body is stored as DELTA_BYTE_ARRAY, which is not read "
        "here; write text columns with dictionary or plain encoding (the default of pyarrow, "
        "pandas and Spark's Parquet v1 writer)",
    )


def test_an_arrow_body_of_too_many_messages_is_413():
    data = pa.Table.from_batches([table().to_batches()[0].slice(0, 1)] * 10_001)
    assert refused_within(arrow_bytes(data), formats.ARROW_STREAM, 64) == (
        413,
        "the Arrow body holds more than 10000 messages; send its rows in fewer, larger "
        "record batches",
    )


def test_a_csv_body_wider_than_max_columns_is_413_from_its_header():
    header = ",".join(f"c{i}" for i in range(2001))
    body = (header + "\n" + ",".join("1" * 2001) + "\n").encode()
    with pytest.raises(ServiceError) as caught:
        formats.read_body(body, formats.CSV, SCHEMA, LimitsSettings())
    assert (caught.value.status, caught.value.message) == (
        413,
        "the CSV body has 2001 columns or more, more than 2000 ([limits] max_columns): send "
        "only the columns the model uses",
    )


@pytest.mark.parametrize("digits", [4301, 5001, 100_000])
def test_an_integer_of_too_many_digits_is_400(digits):
    body = b'{"age": ' + b"7" * digits + b', "city": "a"}'
    assert refusal(body, formats.JSON) == (
        400,
        "the JSON body has an integer of more than 4300 digits; send numbers that fit a float "
        "(at most about 1.8e308)",
    )


def test_arrow_to_columns_still_ignores_extra_columns():
    """The batch-scoring job's contract: a stored data set also has its target."""
    extra = table().append_column("plan", pa.array(["a", "b", "c"]))
    assert_expected(inputs.arrow_to_columns(extra, SCHEMA))


# --- Answers ------------------------------------------------------------------------------

CLASSES = ["setosa", "versicolor", "virginica"]
#: The predictor's raw output for two rows: class indices and probabilities.
RAW = np.array([0, 2])
PROBA = np.array(
    [[0.9809884277925826, 0.019010965040251505, 6e-07], [1 / 3, 0.25, 0.41666666666666663]]
)
ANSWER = {
    "predictions": ["setosa", "virginica"],
    "probabilities": [
        {"setosa": 0.9809884277925826, "versicolor": 0.019010965040251505, "virginica": 6e-07},
        {"setosa": 1 / 3, "versicolor": 0.25, "virginica": 0.41666666666666663},
    ],
}
TABLE = {
    "prediction": ["setosa", "virginica"],
    "probability_setosa": [0.9809884277925826, 1 / 3],
    "probability_versicolor": [0.019010965040251505, 0.25],
    "probability_virginica": [6e-07, 0.41666666666666663],
}


def bundle(task: str = "classification") -> ModelBundle:
    return ModelBundle(
        pipeline=object(),
        task=task,
        estimator="LogisticRegression" if task == "classification" else "Ridge",
        params={},
        schema=SCHEMA,
        target="species",
        classes=CLASSES if task == "classification" else None,
    )


def test_json_answer_is_the_same_json():
    data, content_type = formats.write_answer(bundle(), RAW, PROBA, formats.JSON)
    assert content_type == "application/json"
    assert json.loads(data) == ANSWER
    assert data == orjson.dumps(outputs.answer(bundle(), RAW, PROBA))
    numbers = formats.write_answer(bundle("regression"), np.array([1.5, 2.25]), None, formats.JSON)
    assert numbers == (b'{"predictions":[1.5,2.25]}', "application/json")


def test_csv_answer():
    data, content_type = formats.write_answer(bundle(), RAW, PROBA, formats.CSV)
    assert content_type == "text/csv; charset=utf-8"
    assert data.decode().splitlines()[0] == (
        '"prediction","probability_setosa","probability_versicolor","probability_virginica"'
    )
    assert pacsv.read_csv(io.BytesIO(data)).to_pydict() == TABLE
    plain = formats.write_answer(bundle("regression"), np.array([1.5, 0.1]), None, formats.CSV)
    assert plain[0].decode() == '"prediction"\n1.5\n0.1\n'
    labels = formats.write_answer(bundle(), RAW, None, formats.CSV)[0]
    assert labels.decode() == '"prediction"\n"setosa"\n"virginica"\n'


@pytest.mark.parametrize("media_type", [formats.PARQUET, formats.PARQUET_OLD])
def test_parquet_answer(media_type):
    data, content_type = formats.write_answer(bundle(), RAW, PROBA, media_type)
    assert content_type == media_type
    assert pq.read_table(io.BytesIO(data)).to_pydict() == TABLE


def test_arrow_answer():
    data, content_type = formats.write_answer(bundle(), RAW, PROBA, formats.ARROW_STREAM)
    assert content_type == "application/vnd.apache.arrow.stream"
    assert ipc.open_stream(data).read_all().to_pydict() == TABLE
    numbers = formats.write_answer(
        bundle("regression"), np.array([1.5, 2.0]), None, formats.ARROW_STREAM
    )[0]
    assert ipc.open_stream(numbers).read_all().to_pydict() == {"prediction": [1.5, 2.0]}


def test_a_json_body_of_too_many_arrays_and_objects_is_413_before_it_is_decoded():
    """8 MiB of ``{},`` become 243 MiB of dicts once decoded: counted, and refused, first."""
    body = b"[" + b"{}," * (8 * MIB // 3) + b"{}]"
    (status, message), growth = peak_growth_mib(refusal, body, formats.JSON)
    assert (status, message) == (
        413,
        "the JSON body holds more than 400016 arrays and objects; send at most 100000 records "
        "per request",
    )
    assert growth < 16, f"grew by {growth:.0f} MiB"


@pytest.mark.parametrize(
    "data, media_type",
    [
        (b'{"columns": {"age": [1], "city": ["a"], "zip": [7], "id": [3]}}', formats.JSON),
        (b'[{"age": 1, "city": "a", "zip": 7, "id": 3}]', formats.JSON),
        (b'{"age": 1, "zip": 7, "city": "a", "id": 3}', formats.JSON),
        (
            b'{"dataframe_split": {"columns": ["zip", "age", "id", "city"], '
            b'"data": [[7, 1, 3, "a"]]}}',
            formats.JSON,
        ),
        (b"age,city,zip,id\n1,a,75001,3\n", formats.CSV),
    ],
)
def test_extra_columns_are_ignored_and_named_or_refused(data, media_type):
    extras = inputs.ExtraColumns()
    columns = read(data, media_type, extras=extras)
    assert list(columns) == ["age", "city"] and columns["age"].tolist() == [1.0]
    assert sorted(extras.ignored) == ["id", "zip"]
    with pytest.raises(ServiceError) as caught:
        read(data, media_type, extras=inputs.ExtraColumns(refuse=True))
    assert caught.value.status == 400
    assert caught.value.message.startswith("the input has column(s) '")
    assert caught.value.message.endswith(
        "the model does not take (?extra_columns=refuse); the model expects 'age', 'city'; "
        "send only those, or leave out extra_columns to have the others ignored"
    )
