"""CSV delimiters: detected from the header line, used by profiling and by training's reader;
and column names that are not text."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlservice.errors import Invalid
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
    frame = dataset_files.load_frame(path, dataset_files.CSV_FORMAT, [], delimiter=";")
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
    frame = dataset_files.load_frame(path, dataset_files.CSV_FORMAT, ["code"], delimiter="\t")
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
