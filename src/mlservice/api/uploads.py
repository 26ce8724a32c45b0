"""Request bodies streamed to the artifact store instead of memory or /tmp.

Werkzeug parses multipart bodies chunk by chunk and asks the request for a
file to write each file part into. :class:`StreamingRequest` answers with a
temporary file inside the artifact directory, so an upload lands on the
volume once and is then linked into place (see ``ArtifactStore.adopt``).
"""

from __future__ import annotations

import tempfile
from typing import IO

from flask import Request

from .services import services


class StreamingRequest(Request):
    """Flask's request, with file parts spooled into the artifact store."""

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        directory = services().datasets.artifacts.incoming()
        # Deleted when closed: a failed or refused upload leaves nothing behind.
        return tempfile.NamedTemporaryFile(dir=directory, prefix="upload-", suffix=".part")
