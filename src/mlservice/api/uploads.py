"""Upload bodies: the file NGINX wrote, or the request's own stream, into the artifact store.

Behind NGINX (nginx/templates/ml-service.conf.template) an upload never
passes through an API worker. NGINX reads the whole body into a file under
``<artifact dir>/uploads`` (the store's file system) and only then asks the
API, with no body and that file's path in ``X-Mlservice-Body-File``. The
route links the file into place (a raw body) or parses the parts out of it
(multipart), and the name NGINX gave it is removed when the request ends,
whatever the answer (:func:`register`). A slow client holds one NGINX
connection, never a worker, and a body that did not all arrive never reaches
the API. NGINX sends the header on every request, empty (so dropped) except
from the upload locations: a client's own never arrives. The path is checked
all the same (a file NGINX names, directly in that directory) before
anything reads or removes it.

Without NGINX (Gunicorn reached directly: the route tests, another proxy),
the body comes on the request's stream: file parts are spooled into the
store's incoming directory (:class:`StreamingRequest`), and a body shorter
than its Content-Length is refused with 400 before anything is stored
(:func:`guard_stream`).
"""

from __future__ import annotations

import io
import logging
import stat
import tempfile
from pathlib import Path
from typing import IO

from flask import Flask, Request, g, request
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.formparser import FormDataParser
from werkzeug.wsgi import LimitedStream

from ..errors import BadRequest
from ..store.artifacts import hold_lock
from .services import services

log = logging.getLogger(__name__)

#: The header through which NGINX names the file it wrote an upload's body into.
BODY_FILE_HEADER = "X-Mlservice-Body-File"
#: The artifact store's directory NGINX writes upload bodies into (its client_body_temp_path).
UPLOADS_DIR = "uploads"
#: Room for multipart headers and boundaries on top of an upload's file itself
#: (NGINX's body cap has the same: mlservice.nginx_conf.MULTIPART_SLACK_MB).
MULTIPART_OVERHEAD = 1024 * 1024
#: A body file is read this much at a time: Werkzeug's multipart reader asks for
#: 64 KiB, each then a copy out of this buffer rather than a system call.
READ_BYTES = 1024 * 1024


def spool(
    total_content_length: int | None,
    content_type: str | None,
    filename: str | None = None,
    content_length: int | None = None,
) -> IO[bytes]:
    """Where Werkzeug writes a multipart file part: a temporary file in the store's
    incoming directory, so that the part is then linked into place, not copied."""
    directory = services().datasets.artifacts.incoming()
    # Deleted when closed: a failed or refused upload leaves nothing behind. Locked while
    # open: one left by a killed worker is told apart and swept (store/artifacts.py).
    part = tempfile.NamedTemporaryFile(dir=directory, prefix="upload-", suffix=".part")
    hold_lock(part)
    return part


class StreamingRequest(Request):
    """Flask's request, with file parts spooled into the artifact store."""

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return spool(total_content_length, content_type, filename, content_length)


class LargeReadsFormParser(FormDataParser):
    """Werkzeug's form parser, reading a request's stream in 1 MiB steps rather than 64 KiB.

    Gunicorn reads a body ahead up to 1 MiB and copies what is left of that
    again on every read: at 64 KiB a read, a 1 GiB multipart upload took the
    API worker 4.5-5.2 CPU seconds instead of 3.0.
    """

    def parse(
        self,
        stream: IO[bytes],
        mimetype: str,
        content_length: int | None,
        options: dict[str, str] | None = None,
    ) -> tuple[IO[bytes], MultiDict[str, str], MultiDict[str, FileStorage]]:
        """Werkzeug's parse, over a 1 MiB buffer."""
        if isinstance(stream, io.RawIOBase):  # Werkzeug's LimitedStream (a max_content_length)
            stream = io.BufferedReader(stream, buffer_size=READ_BYTES)
        return super().parse(stream, mimetype, content_length, options)


def uploads_directory() -> Path:
    """The directory NGINX writes upload bodies into."""
    return services().datasets.artifacts.root / UPLOADS_DIR


def _named_body_file() -> Path | None:
    """The file ``X-Mlservice-Body-File`` names, if it is one NGINX wrote; ``None`` if the
    header is absent, or names anything else (logged once: never read, never removed)."""
    named = request.headers.get(BODY_FILE_HEADER)
    if not named:
        return None
    if "mlservice_body_file" not in g:
        g.mlservice_body_file = _checked_body_file(named)
    return g.mlservice_body_file


def _checked_body_file(named: str) -> Path | None:
    """``named`` as a path if it is a regular file directly in :func:`uploads_directory`."""
    path = Path(named)
    directory = uploads_directory()
    try:
        # NGINX names its body files with digits alone, in the directory itself.
        inside = (
            path.name.isdigit()
            and path.parent.resolve() == directory.resolve()
            and stat.S_ISREG(path.lstat().st_mode)
        )
    except OSError:
        inside = False
    if not inside:
        log.error(
            "%s names %r, not a file NGINX wrote into %s: check that NGINX's "
            "MLSERVICE_ARTIFACT_DIR is the API's [service] artifact_dir, and that clients "
            "cannot reach Gunicorn's port",
            BODY_FILE_HEADER,
            named,
            directory,
        )
        return None
    return path


def body_file() -> Path | None:
    """The upload's body as the file NGINX wrote (``None``: it comes on the request's stream).

    400 if the request names a file that is not NGINX's (see :func:`_named_body_file`).
    Its size is noted for the upload metrics (:func:`body_size`).
    """
    if not request.headers.get(BODY_FILE_HEADER):
        return None
    path = _named_body_file()
    if path is None:
        raise BadRequest("the upload could not be received; send it again")
    g.mlservice_body_size = path.stat().st_size
    return path


def body_size() -> int | None:
    """The bytes of the request's body as the client sent it: the file NGINX wrote, or
    the declared Content-Length (the request to the API itself has no body then)."""
    return g.get("mlservice_body_size") or request.content_length


def guard_stream() -> None:
    """Make the request's stream refuse (400) a body that ends before its Content-Length.

    Gunicorn ends the stream wherever the client stopped sending: without
    this, the first bytes of a cut-short upload would be stored as if whole.
    Call it before anything reads the body (the form included).
    """
    length = request.content_length
    if length is not None:
        request.environ["wsgi.input"] = CompleteBody(request.environ["wsgi.input"], length)


class CompleteBody(LimitedStream):
    """A body of a declared length: ending sooner is the client's error, not the end."""

    def on_disconnect(self, error: Exception | None = None) -> None:
        """Refuse the request: what arrived is not the body the client meant to send."""
        raise BadRequest(
            f"the body ended after {self.tell()} of the {self.limit} bytes its "
            "Content-Length declares; nothing was stored: send the whole body"
        )


def parse_multipart(path: Path, max_length: int) -> tuple[MultiDict, MultiDict]:
    """The form fields and file parts of the multipart body NGINX wrote to ``path``.

    File parts are spooled into the store's incoming directory (:func:`spool`),
    like those of a streamed request; the request's own limits on form parts hold.
    """
    parser = FormDataParser(
        stream_factory=spool,
        max_form_memory_size=request.max_form_memory_size,
        max_content_length=max_length,
        max_form_parts=request.max_form_parts,
    )
    with path.open("rb", buffering=READ_BYTES) as body:
        _, form, files = parser.parse(
            body, "multipart/form-data", path.stat().st_size, request.mimetype_params
        )
    return form, files


def file_part(files: MultiDict, field: str = "file") -> FileStorage:
    """The multipart file part ``field``; 400 naming the field if it is absent."""
    part = files.get(field)
    if part is None:
        raise BadRequest(f"multipart/form-data upload needs a file field named {field!r}")
    return part


def _remove_body_file(_error: BaseException | None) -> None:
    """Remove the body file NGINX named, whatever the answer was: adopted, it was linked
    into place first; refused (a 401 included), it goes now rather than when NGINX ends."""
    path = _named_body_file()
    if path is not None:
        path.unlink(missing_ok=True)


def register(app: Flask) -> None:
    """Remove every upload body file NGINX hands the API once its request has ended."""
    app.teardown_request(_remove_body_file)
