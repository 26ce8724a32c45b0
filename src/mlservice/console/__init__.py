"""The web console at ``/ui``: one static page and its scripts, calling the HTTP API.

Why static: the console is a client of the same API as ``mls`` and Swagger UI
(the user's bearer token, the same routes, the API's own error words), so it
needs no server-side state, no template and no Redis; it works offline
because every file is here in the package (no CDN). The page is a small
application in plain JavaScript modules (``static/``) that renders every
value with ``textContent``, never as HTML. Its Content-Security-Policy,
set here on every ``/ui`` answer, allows scripts, styles and fetches from the
service's own origin only (no inline script, no ``eval``), and images from it
or from ``blob:`` URLs (the report's plots, fetched with the token).
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

from ..errors import NotFound

bp = Blueprint("console", __name__)

#: The console's files, served from the package.
STATIC_DIR = Path(__file__).parent / "static"
#: What the page may load and run: nothing inline, nothing from elsewhere.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
#: Asset types by extension (nothing else under ``static/`` is served).
MEDIA_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}


def _guarded(response: Response) -> Response:
    """The console's policy on one answer (NGINX adds nosniff, DENY framing); files revalidated."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/ui")
@bp.get("/ui/")
def page() -> Response:
    """The console's one page; its views are chosen by the URL's fragment (``#/models``)."""
    response = send_from_directory(STATIC_DIR, "index.html", mimetype="text/html", max_age=0)
    return _guarded(response)


@bp.get("/ui/assets/<name>")
def asset(name: str) -> Response:
    """One of the console's scripts or its style sheet."""
    media_type = MEDIA_TYPES.get(Path(name).suffix)
    if media_type is None or not (STATIC_DIR / name).is_file():
        raise NotFound(f"no console file {name!r}; the console is /ui")
    response = send_from_directory(STATIC_DIR, name, mimetype=media_type, max_age=0)
    return _guarded(response)
