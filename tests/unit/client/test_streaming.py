"""Streamed bodies: lengths known in advance, progress counted, bodies that start over."""

import io

from mlservice_client.streaming import MultipartStream, ProgressReader, save_stream


def read_all(body) -> bytes:
    parts = []
    while chunk := body.read(8192):
        parts.append(chunk)
    return b"".join(parts)


def test_progress_reader_counts_and_rewinds():
    seen = []
    reader = ProgressReader(io.BytesIO(b"x" * 3000), lambda n, total: seen.append((n, total)))
    assert len(reader) == 3000 and read_all(reader) == b"x" * 3000
    assert sum(n for n, _ in seen) == 3000 and {t for _, t in seen} == {3000}
    reader.rewind()
    assert sum(n for n, _ in seen) == 0 and read_all(reader) == b"x" * 3000


def test_multipart_body_is_what_its_length_says_and_parses():
    body = MultipartStream({"name": "plans"}, "file", 'a "b".bin', io.BytesIO(b"\x00bundle"))
    first = read_all(body)
    assert len(first) == len(body)
    boundary = body.boundary.encode()
    assert first.startswith(b"--" + boundary + b'\r\nContent-Disposition: form-data; name="name"')
    assert (
        b'filename="a _b_.bin"' in first
        and b"\r\n\r\n\x00bundle\r\n--" + boundary + b"--\r\n" in first
    )
    body.rewind()
    assert read_all(body) == first


def test_save_stream_writes_every_chunk():
    out = io.BytesIO()
    assert save_stream([b"ab", b"", b"c"], out) == 3 and out.getvalue() == b"abc"
