"""CSV delimiters: detected from the header line, used by profiling and by training's reader;
and column names that are not text."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlservice.config import LimitsSettings
from mlservice.errors import Invalid, TooLarge, UnsupportedMedia
from mlservice.store import csv_dialect, dataset_files
from mlservice.store.records import DatasetRecord


@pytest.mark.parametrize(
    "head, delimiter",
    [
        (b"age,city,plan\n1,Paris,basic\n", ","),
        (b"age;city;plan\n1;Paris;basic\n", ";"),
        (b"age\tcity\tplan\n1\tParis\tbasic\n", "\t"),
        (b"age|city|plan\r\n1|Paris|basic\r\n", "|"),
        (b"only\n1\n", ","),  # one column: the default
        (b"first name\n", ","),  # spaces are not delimiters
        (b"a;b,c;d\n", ";"),  # the most frequent wins
        (b"a;b,c\n", ","),  # a tie: the first candidate
        (b'"a,b";"c,d";"e,f"\n1;2;3\n', ";"),  # inside double quotes: ignored
        (b'"say ""x,y""";z\n', ";"),  # escaped quotes stay inside
        (b"x;y\n1,2,3,4,5\n", ";"),  # only the header line counts
        (b"", ","),
    ],
)
def test_delimiter_is_the_most_frequent_candidate_in_the_header(head, delimiter):
    assert csv_dialect.detect_delimiter(head) == delimiter


def test_profile_and_load_frame_read_with_the_detected_delimiter(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("age;city;income\n34;Paris;52000.5\n61;;\n27;Lyon;38250.0\n")
    profile = dataset_files.profile_file(path, dataset_files.CSV_FORMAT)
    assert profile["delimiter"] == ";"
    assert profile["rows"] == 3
    assert [(c["name"], c["dtype"], c["missing"]) for c in profile["columns"]] == [
        ("age", "integer", 0),
        ("city", "string", 1),
        ("income", "float", 1),
    ]
    frame = dataset_files.load_frame(
        path, dataset_files.CSV_FORMAT, [], dialect=csv_dialect.CsvDialect(";")
    )
    assert list(frame.columns) == ["age", "city", "income"]
    assert frame["age"].tolist() == [34, 61, 27]
    assert frame["city"].fillna("-").tolist() == ["Paris", "-", "Lyon"]


def test_mixed_columns_are_found_with_the_detected_delimiter(tmp_path):
    """A type-conversion error past the first block names its column with the same delimiter."""
    path = tmp_path / "data.csv"
    rows = [f"{i}\t{i % 7}" for i in range(300_000)] + ["300000\tseven"]
    path.write_text("id\tcode\n" + "\n".join(rows) + "\n")
    profile = dataset_files.profile_file(path, dataset_files.CSV_FORMAT)
    assert profile["delimiter"] == "\t"
    assert profile["string_columns"] == ["code"]
    assert [(c["name"], c["dtype"]) for c in profile["columns"]] == [
        ("id", "integer"),
        ("code", "string"),
    ]
    frame = dataset_files.load_frame(
        path, dataset_files.CSV_FORMAT, ["code"], dialect=csv_dialect.CsvDialect("\t")
    )
    assert frame["code"].iloc[-1] == "seven" and frame["code"].iloc[8] == "1"


def record(file_format: str, **extra) -> DatasetRecord:
    base: DatasetRecord = {
        "id": "d1",
        "name": "d1",
        "owner": "alice",
        "format": file_format,
        "size_bytes": 10,
        "rows": 3,
        "columns": [],
        "string_columns": ["code"],
        "upload_seconds": 0.01,
    }
    return base | extra  # type: ignore[return-value]


def test_records_without_a_delimiter_mean_comma():
    assert dataset_files.delimiter_of(record("csv")) == ","
    assert dataset_files.delimiter_of(record("csv", delimiter=";")) == ";"


def test_public_shows_the_delimiter_for_csv_and_null_for_parquet():
    assert dataset_files.public(record("csv", delimiter="\t"))["delimiter"] == "\t"
    assert dataset_files.public(record("csv"))["delimiter"] == ","
    shown = dataset_files.public(record("parquet"))
    assert shown["delimiter"] is None
    assert "string_columns" not in shown


@pytest.mark.parametrize("file_format", [dataset_files.CSV_FORMAT, dataset_files.PARQUET_FORMAT])
def test_column_names_that_are_not_utf8_are_refused(tmp_path, file_format):
    """pyarrow decodes names only when asked: a 422, not a 500 from deep inside."""
    path = tmp_path / "data"
    if file_format == dataset_files.CSV_FORMAT:
        path.write_bytes(b"\xff\xfe,b\n1,2\n")
    else:
        pq.write_table(pa.table({"QQQQ": [1], "b": [2]}), path, store_schema=False)
        path.write_bytes(path.read_bytes().replace(b"QQQQ", b"\xff\xfe\xfd\xfc"))
    with pytest.raises(Invalid) as refused:
        dataset_files.profile_file(path, file_format)
    assert refused.value.message == "the file has column names or text that are not UTF-8"


def hostile_parquet(path, rows: int, length: int, **options) -> None:
    """``rows`` rows of one ``length``-byte text value, stored once in a dictionary page and
    read back as plain text (no Arrow schema in the file, as most writers leave it)."""
    city = pa.DictionaryArray.from_arrays(
        pa.array([0] * rows, pa.int32()), pa.array(["x" * length])
    )
    table = pa.table({"age": pa.array([1.0] * rows), "city": city})
    pq.write_table(table, path, compression="zstd", store_schema=False, **options)


def peak_growth_mib(work, *args):
    """``work(*args)``'s result and how far this process's peak RSS rose meanwhile (MiB)."""
    Path("/proc/self/clear_refs").write_text("5")
    before = _hwm_kib()
    result = work(*args)
    return result, (_hwm_kib() - before) / 1024


def _hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_profiling_counts_a_dictionary_value_once_not_once_a_row(tmp_path):
    """65,536 rows of one 1,500-byte value (94 MiB as plain text; 16 KB on disk): before,
    profiling a batch grew the process by 206 MiB; read as a dictionary, by a few."""
    path = tmp_path / "data.parquet"
    hostile_parquet(path, 65_536, 1_500)
    assert path.stat().st_size < 20_000
    profile, growth = peak_growth_mib(dataset_files.profile_file, path, "parquet")
    assert growth < 24, f"grew by {growth:.0f} MiB"
    assert profile["rows"] == 65_536
    city = profile["columns"][1]
    assert (city["name"], city["dtype"], city["distinct"], city["missing"]) == (
        "city",
        "string",
        1,
        0,
    )
    (sample,) = city["categories_sample"]
    assert sample.startswith("x" * 200 + "… (1500 characters, ")


def test_profiling_counts_formulas_through_the_dictionary(tmp_path):
    path = tmp_path / "data.parquet"
    city = pa.array(["=1+1", "plain", "=1+1", None, "@x"]).dictionary_encode()
    pq.write_table(pa.table({"=name": [1, 2, 3, 4, 5], "city": city}), path, store_schema=False)
    profile = dataset_files.profile_file(path, "parquet")
    assert profile["formula_cells"] == 1 + 3  # the header cell, then three text cells
    assert profile["columns"][1]["categories_sample"] == ["=1+1", "@x", "plain"]


def test_a_parquet_chunk_that_unpacks_past_the_limit_is_413(tmp_path):
    path = tmp_path / "data.parquet"
    hostile_parquet(path, 20, 100_000, use_dictionary=False)  # 1.9 MiB of text, zstd
    assert path.stat().st_size < 10_000
    with pytest.raises(TooLarge) as refused:
        dataset_files.profile_file(path, "parquet", LimitsSettings(max_decoded_mb=1))
    assert refused.value.message == (
        "column 'city' of the Parquet file unpacks to 1.9 MiB in row group 0, more than 1 MiB "
        "([limits] max_decoded_mb): write the file with smaller row groups"
    )


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_a_file_wider_than_max_columns_is_413(tmp_path, file_format):
    path = tmp_path / "data"
    names = [f"c{i}" for i in range(11)]
    if file_format == "csv":
        path.write_text(",".join(names) + "\n" + ",".join("1" * 11) + "\n")
    else:
        pq.write_table(pa.table({name: [1] for name in names}), path)
    with pytest.raises(TooLarge) as refused:
        dataset_files.profile_file(path, file_format, LimitsSettings(max_columns=10))
    assert refused.value.message == (
        "the file has 11 columns or more, more than 10 ([limits] max_columns): upload only the "
        "columns a model will use"
    )


def test_a_delta_encoded_text_column_is_415(tmp_path):
    path = tmp_path / "data.parquet"
    table = pa.table({"age": [1.0], "city": ["Paris"]})
    pq.write_table(table, path, use_dictionary=False, column_encoding={"city": "DELTA_BYTE_ARRAY"})
    with pytest.raises(UnsupportedMedia) as refused:
        dataset_files.profile_file(path, "parquet")
    assert (
        "column 'city' of the Parquet file is stored as DELTA_BYTE_ARRAY" in refused.value.message
    )


@pytest.mark.parametrize(
    "content, message",
    [
        (
            b"a,b\n1,2\n3,4,5\n",
            "ragged rows: row 1 has 3 fields where the header has 2; give every row one value "
            "per column, and quote text that holds the delimiter ','",
        ),
        (
            b'a,b\n1,2\n"3,4\n',  # an unclosed quote: the rest is one field
            "ragged rows: row 1 has 1 field where the header has 2; give every row one value "
            "per column, and quote text that holds the delimiter ','",
        ),
        (b"a,b\n1,2\n3,\xff\n", "column 'b' is not UTF-8 text"),
    ],
)
def test_csv_errors_are_said_in_the_users_terms(tmp_path, content, message):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(Invalid) as refused:
        dataset_files.profile_file(path, "csv")
    assert refused.value.message == message


def test_training_refuses_a_parquet_file_that_becomes_too_large(tmp_path):
    """10,000 rows of one 10 KB value: 95 MiB once loaded, counted without loading it."""
    path = tmp_path / "data.parquet"
    hostile_parquet(path, 10_000, 10_000)
    limits = LimitsSettings(max_training_mb=64)
    Path("/proc/self/clear_refs").write_text("5")
    before = _hwm_kib()
    with pytest.raises(TooLarge) as refused:
        dataset_files.load_frame(
            path, "parquet", [], dialect=csv_dialect.CsvDialect(), limits=limits
        )
    growth = (_hwm_kib() - before) / 1024
    assert growth < 24, f"grew by {growth:.0f} MiB"
    assert refused.value.message.startswith("the data set becomes more than ")
    assert refused.value.message.endswith(
        "MiB in memory once loaded, more than 64 MiB ([limits] max_training_mb): train on fewer "
        "rows or shorter text"
    )
    frame = dataset_files.load_frame(
        path,
        "parquet",
        [],
        dialect=csv_dialect.CsvDialect(),
        limits=LimitsSettings(max_training_mb=96),
    )
    assert len(frame) == 10_000
