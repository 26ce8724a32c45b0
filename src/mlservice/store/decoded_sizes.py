"""What tabular data becomes in memory, counted from Arrow's offsets and indices, not its values.

A Parquet file or an Arrow stream is small on the wire and may be huge in a
model's hands: a dictionary-encoded text column holds one long value once, and
every row that refers to it becomes a copy of it on its way to scikit-learn or
ONNX Runtime, which both copy text into arrays of their own (measured: about 4
to 5 bytes of memory per byte of text). So the sizes here count what the rows
*become*: a fixed number of bytes per row (8 per number the model works on)
plus each text value's UTF-8 bytes in every row that holds it. They are worked
out from string offsets, dictionary value lengths and indices, never by
turning the values into Python strings: counting costs 8 bytes a row, whatever
the text.

Every reader of untrusted tables (prediction bodies, data set profiling,
scoring chunks, training loads) checks these sizes against ``[limits]`` before
it materialises anything.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: What one number costs a model per row (float64), and what a row of a column is counted
#: at when only its width is known.
NUMBER_BYTES = 8
MIB = 1024**2


def is_text(arrow_type: pa.DataType) -> bool:
    """Text in any of Arrow's layouts (plain, large, view), dictionary-encoded or not."""
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_string_view(arrow_type)
        or pa.types.is_binary(arrow_type)
        or pa.types.is_large_binary(arrow_type)
        or pa.types.is_binary_view(arrow_type)
    )


def value_bytes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Each row's text length in bytes (0 for a missing value) as int64, one entry per row.

    A dictionary-encoded column gives its values' lengths looked up by each
    row's index: the dictionary is never expanded. A column that is not text
    counts 0 bytes of text.
    """
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    parts = [_chunk_bytes(chunk) for chunk in chunks]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _chunk_bytes(chunk: pa.Array) -> np.ndarray:
    """:func:`value_bytes` of one array."""
    if not pa.types.is_dictionary(chunk.type):
        return _lengths(chunk)
    lengths = _lengths(chunk.dictionary)
    if not len(lengths):  # every row is missing
        return np.zeros(len(chunk), dtype=np.int64)
    indices = chunk.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.intp)
    sizes = lengths[indices]
    if chunk.null_count:
        sizes[chunk.is_null().to_numpy(zero_copy_only=False)] = 0
    return sizes


def _lengths(array: pa.Array) -> np.ndarray:
    """The byte length of each value of a plain (not dictionary) array; 0 if not text."""
    if not is_text(array.type):
        return np.zeros(len(array), dtype=np.int64)
    if pa.types.is_string_view(array.type) or pa.types.is_binary_view(array.type):
        return _view_lengths(array)
    lengths = pc.binary_length(array).fill_null(0)
    return np.asarray(lengths.to_numpy(zero_copy_only=False), dtype=np.int64)


def _view_lengths(array: pa.Array) -> np.ndarray:
    """The lengths a string view array's views hold (the first 4 bytes of each 16-byte view):
    Arrow has no length kernel for views, and casting them would copy every value."""
    views = array.buffers()[1]
    if views is None or not len(array):
        return np.zeros(len(array), dtype=np.int64)
    table = np.frombuffer(views, dtype="<i4").reshape(-1, 4)
    lengths = table[array.offset : array.offset + len(array), 0].astype(np.int64)
    if array.null_count:
        lengths[array.is_null().to_numpy(zero_copy_only=False)] = 0
    return lengths


def row_bytes(
    table: pa.Table | pa.RecordBatch, text_columns: list[str], fixed_per_row: int
) -> np.ndarray:
    """What each row becomes: ``fixed_per_row`` plus the bytes of its ``text_columns`` values."""
    sizes = np.full(table.num_rows, fixed_per_row, dtype=np.int64)
    for name in text_columns:
        sizes += value_bytes(table.column(name))
    return sizes


def decoded_bytes(
    table: pa.Table | pa.RecordBatch, text_columns: list[str], fixed_per_row: int
) -> int:
    """What the whole table becomes (the sum of :func:`row_bytes`)."""
    return int(row_bytes(table, text_columns, fixed_per_row).sum())


def in_mib(size: float) -> str:
    """A byte count for messages: ``"300.5 MiB"``."""
    return f"{size / MIB:.1f} MiB"
