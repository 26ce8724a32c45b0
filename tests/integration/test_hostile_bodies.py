"""Every body is bounded by what it becomes, not what it weighs (issue 18).

Each body here is small on the wire and sized so that a service that decoded
it before looking would grow an API worker by about 1 GiB (measured against
the code before the fix: the numbers are in each test's docstring). The
service must answer a JSON 4xx naming the ``[limits]`` key (or, for an
upload it can profile cheaply, accept it) while no API worker's peak RSS
grows by 200 MB. Peaks are measured from each worker's VmHWM, reset first
(``/proc/<pid>/clear_refs``), so an earlier test's peak hides nothing.

The stack runs with the default [limits]: max_decoded_mb 64, max_columns 2000.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from mlservice.store.bundles import MAGIC
from tests.helpers import train, upload, wait_ready

#: What an API worker's peak RSS may grow by while it refuses one hostile body.
GROWTH_LIMIT_MB = 200
FEATURES = ["age", "city", "income"]
PARQUET = "application/vnd.apache.parquet"
ARROW = "application/vnd.apache.arrow.stream"
DECODED_REFUSAL_END = "MiB ([limits] max_decoded_mb): send fewer rows, or shorter text, per request"


class PeakRss:
    """The largest growth of the API workers' peak RSS over a ``with`` block, in MB."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.before: dict[int, int] = {}
        self.growth_mb = 0.0

    def __enter__(self) -> PeakRss:
        for pid in self.pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak starts again from now
            self.before[pid] = _peak_kib(pid)
        return self

    def __exit__(self, *exc_info) -> None:
        self.growth_mb = max(_peak_kib(pid) - self.before[pid] for pid in self.pids) / 1024
        print(f"\nAPI worker peak RSS growth: {self.growth_mb:.1f} MB")  # shown with -s


def _peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def text_model(client, admin_token, customers):
    """A classifier on a text column and two numbers, served by scikit-learn: its predict path."""
    dataset_id = upload(client, admin_token, customers)
    accepted = train(
        client,
        admin_token,
        {
            "dataset_id": dataset_id,
            "target": "plan",
            "features": FEATURES,
            "estimator": "LogisticRegression",
            "params": {},
            "compile": False,
        },
    )
    record = wait_ready(client, admin_token, accepted["model_id"])
    assert record["status"] == "ready", record
    yield f"/resource/models/{accepted['model_id']}/predict"
    client.delete(f"/resource/models/{accepted['model_id']}", admin_token)
    client.delete(f"/resource/datasets/{dataset_id}", admin_token)


def repeated_text(rows: int, length: int, narrow: bool = False) -> pa.Table:
    """The model's columns, ``city`` one ``length``-byte value that every row refers to;
    ``narrow``: int8 indices and float32 numbers, as small as Arrow lets a row be."""
    indices = np.zeros(rows, dtype=np.int8 if narrow else np.int32)
    city = pa.DictionaryArray.from_arrays(pa.array(indices), pa.array(["x" * length]))
    ones = pa.array(np.ones(rows, dtype=np.float32 if narrow else np.float64))
    return pa.table({"age": ones, "city": city, "income": ones})


def parquet_body(table: pa.Table) -> bytes:
    sink = io.BytesIO()  # no Arrow schema in the file: read back as plain text, as most are
    pq.write_table(table, sink, compression="zstd", store_schema=False)
    return sink.getvalue()


def arrow_body(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    options = ipc.IpcWriteOptions(compression="zstd")
    with ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def post(client, token, path, body, content_type):
    return client.post(path, token, data=body, headers={"Content-Type": content_type}, timeout=120)


def refused_within_bounds(stack, client, token, path, body, content_type):
    """POST the body; the answer and the API workers' peak growth (MB)."""
    with PeakRss(stack.api_worker_pids()) as rss:
        response = post(client, token, path, body, content_type)
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    return response, rss.growth_mb


@pytest.mark.parametrize("content_type", [PARQUET, ARROW])
def test_a_dictionary_value_in_every_row_is_413(
    stack, client, admin_token, text_model, content_type
):
    """100,000 rows of one 2,300-byte value: a body of a few KB, 223 MiB of model input once each
    row holds it. Before: accepted (200), decoded, then copied per row by scikit-learn: a
    quarter of it (575 bytes) grew a worker by 281 MB (Parquet) and 278 MB (Arrow)."""
    if content_type == PARQUET:
        body = parquet_body(repeated_text(100_000, 2_300))
    else:  # under the old limit (8 x the body + 1 MiB) as the probe's 928-byte stream was
        body = arrow_body(repeated_text(100_000, 2_300, narrow=True))
    assert len(body) < 64_000
    response, growth = refused_within_bounds(
        stack, client, admin_token, text_model, body, content_type
    )
    what = "Parquet" if content_type == PARQUET else "Arrow"
    assert response.status_code == 413, response.text
    assert response.json()["status"] == (
        f"the {what} body becomes 223.2 MiB in memory once decoded, more than 64 "
        + DECODED_REFUSAL_END
    )
    assert growth < GROWTH_LIMIT_MB, f"an API worker grew by {growth:.0f} MB"


def test_a_compressed_arrow_batch_is_413_before_it_is_decompressed(
    stack, client, admin_token, text_model
):
    """977 MiB of text compressed into 133 KB, one record batch. Before: decompressed whole,
    then refused (413): a quarter of it (244 MiB) grew a worker by 116 to 252 MB."""
    rows, length = 100_000, 10 * 1024
    data = pa.allocate_buffer(rows * length)  # zeros: pages this process never touches
    offsets = pa.py_buffer((np.arange(rows + 1, dtype=np.int64) * length).tobytes())
    city = pa.Array.from_buffers(pa.large_string(), rows, [None, offsets, data])
    ones = pa.array(np.ones(rows))
    body = arrow_body(pa.table({"age": ones, "city": city, "income": ones}))
    del data, offsets, city
    assert len(body) < 200_000
    response, growth = refused_within_bounds(stack, client, admin_token, text_model, body, ARROW)
    assert response.status_code == 413, response.text
    assert response.json()["status"] == (
        "the Arrow body unpacks to 978.9 MiB, more than 64 MiB ([limits] max_decoded_mb): "
        "send fewer rows per request"
    )
    assert growth < GROWTH_LIMIT_MB, f"an API worker grew by {growth:.0f} MB"


def wide_csv(columns: int) -> bytes:
    header = ",".join(f"column_{i}" for i in range(columns))
    return (header + "\n" + ",".join("1" * columns) + "\n").encode()


#: The columns the service counts in a header longer than the 1 MiB it reads of it.
SEEN_COLUMNS = wide_csv(100_000)[: 1024**2].count(b",") + 1


def test_a_csv_body_of_100k_columns_is_413_from_its_header(stack, client, admin_token, text_model):
    """1.3 MB. Before: parsed whole, then 422 (unknown columns): 25,000 columns grew a worker
    by 121 MB."""
    body = wide_csv(100_000)
    response, growth = refused_within_bounds(
        stack, client, admin_token, text_model, body, "text/csv"
    )
    assert response.status_code == 413, response.text
    assert response.json()["status"] == (
        f"the CSV body has {SEEN_COLUMNS} columns or more, more than 2000 ([limits] "
        "max_columns): send only the columns the model uses"
    )
    assert growth < GROWTH_LIMIT_MB, f"an API worker grew by {growth:.0f} MB"


def test_an_upload_of_100k_columns_is_413_from_its_header(stack, client, admin_token, store):
    """Before: accepted and profiled, 8 s, 1 GB of an API worker and a 10.5 MB Redis record
    (25,000 columns: 5.3 s and 238 MB)."""
    count_before = store.zcard("mlservice:datasets")
    response, growth = refused_within_bounds(
        stack, client, admin_token, "/resource/datasets", wide_csv(100_000), "text/csv"
    )
    assert response.status_code == 413, response.text
    assert response.json()["status"] == (
        f"the file has {SEEN_COLUMNS} columns or more, more than 2000 ([limits] max_columns): "
        "upload only the columns a model will use"
    )
    assert store.zcard("mlservice:datasets") == count_before
    assert growth < GROWTH_LIMIT_MB, f"an API worker grew by {growth:.0f} MB"


def test_profiling_an_upload_keeps_dictionary_text_as_a_dictionary(stack, client, admin_token):
    """524,288 rows of one 7,400-byte value: 60 KB on disk, 3.6 GiB as plain text, and 65,536
    rows of it (454 MiB, about 1 GiB to profile) in each batch the profile used to read
    (a quarter of it, 1,850 bytes a value, grew a worker by 358 MB)."""
    table = repeated_text(524_288, 7_400)
    body = parquet_body(table)
    assert len(body) < 100_000
    with PeakRss(stack.api_worker_pids()) as rss:
        response = post(client, admin_token, "/resource/datasets?name=long.parquet", body, PARQUET)
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["rows"] == 524_288
    city = record["columns"][1]
    assert (city["name"], city["dtype"], city["distinct"]) == ("city", "string", 1)
    assert city["categories_sample"][0].startswith("x" * 200 + "… (7400 characters, ")
    assert rss.growth_mb < GROWTH_LIMIT_MB, f"an API worker grew by {rss.growth_mb:.0f} MB"
    client.delete(f"/resource/datasets/{record['id']}", admin_token)


def test_a_junk_bundle_is_refused_before_it_is_read_whole(
    stack, client, admin_token, store, tmp_path
):
    """290 MB of junk behind a bundle's magic (the stack's upload cap is 300 MB). Before: read
    whole into memory, twice over, then refused by its signature (75 MiB grew a worker by
    150 MB)."""
    boundary = "hostile-bundle-boundary"
    path = tmp_path / "junk.multipart"
    junk = np.random.default_rng(0).bytes(1024 * 1024)
    with path.open("wb") as handle:
        handle.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="junk.mlbundle"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        )
        handle.write(MAGIC + b"s" * 32)
        for _ in range(290):
            handle.write(junk)
        handle.write(f"\r\n--{boundary}--\r\n".encode())
    models_before = store.zcard("mlservice:models")
    with PeakRss(stack.api_worker_pids()) as rss, path.open("rb") as body:
        response = client.post(
            "/resource/models/upload",
            admin_token,
            data=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=300,
        )
    assert response.status_code == 400, response.text
    assert response.json() == {
        "status": "model bundle signature does not verify (tampered or foreign bundle)"
    }
    assert store.zcard("mlservice:models") == models_before
    assert rss.growth_mb < GROWTH_LIMIT_MB, f"an API worker grew by {rss.growth_mb:.0f} MB"


@pytest.mark.parametrize(
    "path",
    ["/resource/predict", "/resource/models", "/resource/users", "/resource/models/{id}/predict"],
)
def test_an_integer_of_5001_digits_is_400_on_every_json_route(
    client, admin_token, initialised, text_model, path
):
    """Python refuses to read integers of more than 4,300 digits: before, a 500."""
    path = path.replace("/resource/models/{id}/predict", text_model)
    body = b'{"age": ' + b"9" * 5001 + b"}"
    response = post(client, admin_token, path, body, "application/json")
    assert response.status_code == 400, response.text
    assert response.json() == {
        "status": "the JSON body has an integer of more than 4300 digits; send numbers that "
        "fit a float (at most about 1.8e308)"
    }
