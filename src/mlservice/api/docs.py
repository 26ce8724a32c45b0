"""The API's own documentation: Swagger UI at ``/docs``, the contract at ``/openapi.yaml``.

Swagger UI's files come from the pinned ``swagger-ui-bundle`` package, not a
CDN, so the page works offline. The contract is ml-service.yml (``[api]
openapi_file``), served with the request's own origin as its first server
when that origin is one of the service's own (``[api] public_urls``, or a
server the file names): "Try it out" then calls the service that served the
document, from /docs or from Swagger Editor on another origin. Asked under
any other ``Host``, the document names the file's servers alone: a forged
Host never becomes an address the page sends tokens to.
None of this needs a token.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import swagger_ui_bundle
import yaml
from flask import Blueprint, Response, request, send_from_directory

from ..errors import NotFound
from .services import services

bp = Blueprint("docs", __name__)

#: Swagger UI's own files (JavaScript, CSS, icons), as the pinned package ships them.
SWAGGER_UI_DIR = Path(swagger_ui_bundle.swagger_ui_path)
SWAGGER_UI_FILES = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>ML Service API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"""

# In a file of its own rather than inline, so a strict Content-Security-Policy
# (script-src 'self') never breaks the page.
INIT_SCRIPT = """window.ui = SwaggerUIBundle({
  url: "/openapi.yaml",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  displayRequestDuration: true
});
"""


@functools.cache
def load_contract(path: Path) -> dict[str, Any]:
    """The OpenAPI document, parsed once per process."""
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def contract_for(origin: str, contract: dict[str, Any], own: tuple[str, ...]) -> dict[str, Any]:
    """The contract with ``origin`` first among its servers (the others kept after it),
    if it is one of the service's ``own`` origins or a server the file names; else as it is."""
    servers = contract.get("servers", [])
    if origin not in own and origin not in {server.get("url") for server in servers}:
        return contract
    here = {"url": origin, "description": "this service (the origin that served this document)"}
    others = [server for server in servers if server.get("url") != origin]
    return {**contract, "servers": [here, *others]}


def _contract() -> dict[str, Any]:
    settings = services().settings
    origin = request.host_url.rstrip("/").lower()
    own = settings.api.public_urls or ()
    return contract_for(origin, load_contract(settings.openapi_file), own)


@bp.get("/openapi.yaml")
def openapi_yaml() -> Response:
    """The contract as YAML, for Swagger Editor and code generators."""
    text = yaml.safe_dump(_contract(), sort_keys=False, allow_unicode=True)
    return Response(text, content_type="application/yaml; charset=utf-8")


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The contract as JSON."""
    return Response(json.dumps(_contract(), ensure_ascii=False), mimetype="application/json")


@bp.get("/docs")
def page() -> Response:
    """Swagger UI on the served contract: Authorize, then "Try it out"."""
    return Response(PAGE, mimetype="text/html")


@bp.get("/docs/<name>")
def asset(name: str) -> Response:
    """The page's start-up script, or one of Swagger UI's files (nothing else of the package's)."""
    if name == "init.js":
        return Response(INIT_SCRIPT, mimetype="text/javascript")
    if name not in SWAGGER_UI_FILES:
        raise NotFound(f"no documentation file {name!r}; the page is /docs")
    return send_from_directory(SWAGGER_UI_DIR, name, max_age=86400)
