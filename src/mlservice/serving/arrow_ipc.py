"""Arrow IPC messages sized from their headers, before any buffer is decompressed.

An Arrow stream compressed with zstd or LZ4 expands about 30,000 times: a
13.6 KB body grew an API worker by 400 MiB before any limit looked at it,
because pyarrow decompresses a record batch whole as it reads it. Each message
says what it will take, though: its header (a FlatBuffers table) lists the row
count, each column's length and each buffer's place in the body, and a
compressed buffer starts with its length once decompressed (a little-endian
int64; -1 when that buffer was left as it is). That is exactly what pyarrow
allocates, so summing those numbers first bounds the read before it happens.

The header layout is Arrow's ``Message.fbs`` (format/Message.fbs in the Arrow
repository): ``Message {version, header (union), bodyLength, ...}``,
``RecordBatch {length, nodes: [FieldNode], buffers: [Buffer], compression}``,
``DictionaryBatch {id, data: RecordBatch, isDelta}``, where ``FieldNode`` is
``{length, null_count}`` and ``Buffer`` is ``{offset, length}`` (int64 each).
The ``flatbuffers`` runtime reads the tables; pyarrow has already checked each
header with the FlatBuffers verifier when it read the message.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.ipc as ipc
from flatbuffers import encode, number_types, packer
from flatbuffers.table import Table

#: ``MessageHeader`` union types (Message.fbs).
DICTIONARY_BATCH = 2
RECORD_BATCH = 3
#: Where the fields sit in the tables' vtables: 4 + 2 x the field's index.
_MESSAGE_HEADER_TYPE, _MESSAGE_HEADER = 6, 8
_DICTIONARY_DATA = 6
_BATCH_LENGTH, _BATCH_NODES, _BATCH_BUFFERS, _BATCH_COMPRESSION = 4, 6, 8, 10
#: ``FieldNode`` and ``Buffer`` are two int64s each.
_STRUCT_SIZE = 16
#: Before a compressed buffer: its decompressed length, or -1 if it was stored as it is.
_PREFIX = struct.Struct("<q")


class MalformedMessage(ValueError):
    """A message header that does not hold together (a length out of range, a buffer
    outside the body)."""


@dataclass(frozen=True)
class BatchSize:
    """What one record batch or dictionary batch message will take once read."""

    #: Rows of the batch (a dictionary batch: values of the dictionary).
    rows: int
    #: The longest column (node) it declares: none may be longer than ``rows``.
    longest_column: int
    #: The bytes its buffers take once decompressed: what pyarrow allocates to read it.
    unpacked_bytes: int
    #: A dictionary batch (its rows are a dictionary's values, not the body's rows).
    dictionary: bool


def messages(stream: pa.Buffer) -> ipc.MessageReader:
    """The messages of an Arrow IPC stream (an IPC file's are its stream after 8 bytes)."""
    return ipc.MessageReader.open_stream(pa.BufferReader(stream))


def batch_size(message: ipc.Message) -> BatchSize | None:
    """The size of a record batch or dictionary batch message; ``None`` for another kind.

    Raises :class:`MalformedMessage` for a header whose numbers cannot be true.
    """
    buffer = bytearray(message.metadata.to_pybytes())
    try:
        root = Table(buffer, encode.Get(packer.uoffset, buffer, 0))
        kind = _field(root, _MESSAGE_HEADER_TYPE, number_types.Uint8Flags)
        if kind not in (RECORD_BATCH, DICTIONARY_BATCH):
            return None
        header_offset = root.Offset(_MESSAGE_HEADER)
        if not header_offset:
            raise MalformedMessage("a batch message without its header")
        header = Table(bytearray(), 0)
        root.Union(header, header_offset)
        batch = header
        if kind == DICTIONARY_BATCH:
            offset = header.Offset(_DICTIONARY_DATA)
            if not offset:
                raise MalformedMessage("a dictionary batch without its data")
            batch = Table(header.Bytes, header.Indirect(offset + header.Pos))
        return _record_batch_size(batch, message.body, kind == DICTIONARY_BATCH)
    except (IndexError, struct.error) as exc:
        raise MalformedMessage(f"an unreadable batch header ({exc})") from None


def _record_batch_size(batch: Table, body: pa.Buffer | None, dictionary: bool) -> BatchSize:
    """The sizes a ``RecordBatch`` table declares; compressed buffers by their prefixes."""
    rows = _field(batch, _BATCH_LENGTH, number_types.Int64Flags)
    nodes = _pairs(batch, _BATCH_NODES)
    compressed = bool(batch.Offset(_BATCH_COMPRESSION))
    body_size = body.size if body is not None else 0
    unpacked = 0
    for offset, length in _pairs(batch, _BATCH_BUFFERS):
        if offset < 0 or length < 0 or offset + length > body_size:
            raise MalformedMessage("a buffer outside the message body")
        unpacked += _unpacked_length(body, offset, length) if compressed and length else length
    if rows < 0 or any(length < 0 for length, _ in nodes):
        raise MalformedMessage("a negative length")
    longest = max((length for length, _ in nodes), default=0)
    return BatchSize(rows, longest, unpacked, dictionary)


def _unpacked_length(body: pa.Buffer | None, offset: int, length: int) -> int:
    """A compressed buffer's length once decompressed, from the int64 it starts with."""
    if body is None or length < _PREFIX.size:
        raise MalformedMessage("a compressed buffer without its length")
    (declared,) = _PREFIX.unpack(body.slice(offset, _PREFIX.size).to_pybytes())
    if declared == -1:  # stored uncompressed after the prefix
        return length - _PREFIX.size
    if declared < 0:
        raise MalformedMessage("a negative decompressed length")
    return int(declared)


def _field(table: Table, slot: int, flags: type) -> int:
    """A scalar field of a table (0, its default, when absent)."""
    offset = table.Offset(slot)
    return int(table.Get(flags, offset + table.Pos)) if offset else 0


def _pairs(table: Table, slot: int) -> list[tuple[int, int]]:
    """A vector of structs of two int64s (``FieldNode``, ``Buffer``) as (first, second) pairs."""
    offset = table.Offset(slot)
    if not offset:
        return []
    start, count = table.Vector(offset), table.VectorLen(offset)
    read = number_types.Int64Flags.packer_type
    return [
        (
            int(encode.Get(read, table.Bytes, start + index * _STRUCT_SIZE)),
            int(encode.Get(read, table.Bytes, start + index * _STRUCT_SIZE + 8)),
        )
        for index in range(count)
    ]
