"""Request and response bodies that stream, so a multi-GB file never sits in memory.

``requests`` sends any object with ``read()`` chunk by chunk, and takes its
length from ``__len__``; these readers give it a file (or a multipart body
around a file) that way and report every chunk to a progress callback.
``requests``' own ``files=`` builds the whole multipart body in memory, which
is why multipart is assembled here.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import IO

#: Told how many more bytes went (or came) and, if known, how many there are in all;
#: the CLI hangs a progress bar on it.
Progress = Callable[[int, int | None], None]

#: Bytes read from a file or a response per step: large enough to be quick, small enough
#: that memory stays flat.
CHUNK = 1024 * 1024


def no_progress(done: int, total: int | None) -> None:
    """The default progress callback: nobody is watching."""


def file_size(stream: IO[bytes]) -> int:
    """Bytes left from the stream's position to its end (it must be seekable)."""
    position = stream.tell()
    end = stream.seek(0, os.SEEK_END)
    stream.seek(position)
    return end - position


class ProgressReader:
    """A seekable binary file read in chunks by ``requests``, counting what it sent.

    ``rewind()`` starts over (and tells the progress callback so), which lets a
    request be repeated after a refreshed token or a ``503``.
    """

    def __init__(
        self, stream: IO[bytes], progress: Progress = no_progress, total: int | None = None
    ) -> None:
        self._stream = stream
        self._start = stream.tell()
        self._length = file_size(stream)
        self._total = self._length if total is None else total
        self._sent = 0
        self._progress = progress

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (``requests`` asks for a block at a time)."""
        if size is None or size < 0 or size > CHUNK:
            size = CHUNK
        data = self._stream.read(size)
        if data:
            self._sent += len(data)
            self._progress(len(data), self._total)
        return data

    def rewind(self) -> None:
        """Back to where the upload started."""
        self._stream.seek(self._start)
        self._progress(-self._sent, self._total)
        self._sent = 0


class MultipartStream:
    """A ``multipart/form-data`` body of text fields and one file, produced as it is read.

    Its length is known in advance (headers + file size + trailer), so it is
    sent with ``Content-Length`` rather than chunked, which NGINX and the
    service's upload limits expect.
    """

    def __init__(
        self,
        fields: dict[str, str],
        file_field: str,
        filename: str,
        stream: IO[bytes],
        content_type: str = "application/octet-stream",
        progress: Progress = no_progress,
    ) -> None:
        self.boundary = uuid.uuid4().hex
        head = b"".join(self._field(name, value) for name, value in fields.items())
        quoted = filename.replace("\\", "_").replace('"', "_").replace("\r", "_").replace("\n", "_")
        head += (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="{file_field}"; filename="{quoted}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        self._head = head
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        total = len(self._head) + file_size(stream) + len(self._tail)
        self._file = ProgressReader(stream, progress, total=total)
        self._parts = self._chunks()

    @property
    def content_type(self) -> str:
        """The request's ``Content-Type``, naming the boundary."""
        return f"multipart/form-data; boundary={self.boundary}"

    def _field(self, name: str, value: str) -> bytes:
        return (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()

    def __len__(self) -> int:
        return len(self._head) + len(self._file) + len(self._tail)

    def _chunks(self) -> Iterator[bytes]:
        yield self._head
        while chunk := self._file.read(CHUNK):
            yield chunk
        yield self._tail

    def read(self, size: int = -1) -> bytes:
        """The next piece of the body (a whole chunk at a time; ``b""`` at the end)."""
        return next(self._parts, b"")

    def rewind(self) -> None:
        """Start the body over, for a repeated request."""
        self._file.rewind()
        self._parts = self._chunks()


def save_stream(
    chunks: Iterable[bytes],
    target: IO[bytes],
    total: int | None = None,
    progress: Progress = no_progress,
) -> int:
    """Write response chunks to ``target`` as they come; the bytes written."""
    written = 0
    for chunk in chunks:
        if chunk:
            target.write(chunk)
            written += len(chunk)
            progress(len(chunk), total)
    return written
