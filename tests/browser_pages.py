"""Helpers of the browser tests: pages on "another site", and driving Swagger UI in them.

``StaticSite`` serves a folder on a loopback port from a thread (Python's
http.server), so a page has an origin of its own, other than the stack's.
The Swagger UI helpers use the ids and classes Swagger UI 4.15.5 renders.
"""

from __future__ import annotations

import json
import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import swagger_ui_bundle
from playwright.sync_api import Locator, Page, expect

#: Swagger UI renders a ~3000-line contract: allow it time (milliseconds).
RENDER_TIMEOUT = 60_000
ANSWER_TIMEOUT = 30_000

SWAGGER_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Another site</title>
<link rel="stylesheet" href="swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "%s", dom_id: "#swagger-ui"});</script>
</body>
</html>
"""
#: A page whose ``call(label, url, init)`` fetches and answers {status, body, requestId, retryAfter}
#: or {error} (init.bodySize: a zeroed body of that many bytes), and whose
#: ``burst(url, n)`` sends n such fetches at once; each is noted on the page.
FETCH_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Another site</title></head>
<body><h3 id="origin"></h3>
<script>
document.getElementById("origin").textContent = "fetch() from " + location.origin;
function note(text) {
  const line = document.createElement("pre");
  line.textContent = text;
  document.body.append(line);
}
async function send(url, init) {
  const options = {...init};
  if (options.bodySize) options.body = new Uint8Array(options.bodySize);
  delete options.bodySize;
  try {
    const response = await fetch(url, options);
    const requestId = response.headers.get("X-Request-ID");
    const retryAfter = response.headers.get("Retry-After");
    return {status: response.status, body: await response.text(), requestId, retryAfter};
  } catch (error) {
    return {error: error.name + ": " + error.message};
  }
}
async function call(label, url, init) {
  const result = await send(url, init);
  note(label + " -> " + (result.error || result.status + " " + result.body.slice(0, 90)));
  return result;
}
async function burst(url, n) {
  const results = await Promise.all(Array.from({length: n}, () => send(url, {})));
  const counts = {};
  for (const r of results) counts[r.status || r.error] = (counts[r.status || r.error] || 0) + 1;
  const limited = results.find((r) => r.status === 429);
  note(n + " x GET " + url + " at once -> " + JSON.stringify(counts));
  if (limited) note("a 429 reads " + limited.body + " (X-Request-ID " + limited.requestId + ")");
  return results;
}
</script>
</body>
</html>
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class StaticSite:
    """The files of ``folder`` at http://127.0.0.1:``port``, until ``close()``."""

    def __init__(self, folder: Path, port: int) -> None:
        handler = partial(_QuietHandler, directory=str(folder))
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.origin = f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_pages(folder: Path, spec_url: str, contract: Path) -> None:
    """The pages of "another site", with Swagger UI's files copied locally.

    ``swagger.html``: Swagger UI on ``spec_url`` (the service's served copy);
    ``swagger-file.html``: Swagger UI on a copy of the ``contract`` file served
    by this site itself, as a user opens the repository's file; ``fetch.html``.
    """
    for name in ("swagger-ui.css", "swagger-ui-bundle.js"):
        shutil.copyfile(Path(swagger_ui_bundle.swagger_ui_path, name), folder / name)
    shutil.copyfile(contract, folder / contract.name)
    (folder / "swagger.html").write_text(SWAGGER_PAGE % spec_url)
    (folder / "swagger-file.html").write_text(SWAGGER_PAGE % contract.name)
    (folder / "fetch.html").write_text(FETCH_PAGE)


def choose_server(page: Page, url: str, **variables: str) -> None:
    """Pick ``url`` in the servers dropdown and type its variables' values, as a person does."""
    page.locator(".servers > label > select").select_option(url)
    for name, value in variables.items():
        field = page.locator(f".servers [data-variable={name}]")
        if field.evaluate("element => element.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)


def authorize(page: Page, scheme: str, **fields: str) -> None:
    """Authorize ``scheme`` in Swagger UI's dialog (inputs by name, or the bearer value)."""
    page.locator(".scheme-container button.authorize").click()
    form = page.locator(".auth-container").filter(has=page.locator(f"h4 code:text-is('{scheme}')"))
    for name, value in fields.items():
        form.locator(f"input[name={name}]" if name != "value" else "input").fill(value)
    form.locator("button.authorize").click()
    expect(form.locator("button", has_text="Logout")).to_be_visible()
    page.locator(".modal-ux button.btn-done").first.click()


def open_try_it_out(page: Page, tag: str, operation_id: str) -> Locator:
    """Expand the operation and press "Try it out"; its block."""
    operation = page.locator(f"#operations-{tag}-{operation_id}")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    return operation


def execute(page: Page, operation: Locator, body: Any = None) -> tuple[int, Any]:
    """Put ``body`` (if any) as JSON in the request body, Execute; the rendered code and body.

    The answer is awaited by its X-Request-ID among the rendered headers, so a
    second Execute never reads the first one's answer.
    """
    if body is not None:
        operation.locator("textarea.body-param__text").fill(json.dumps(body, indent=2))
    with page.expect_response(
        lambda r: r.request.method != "OPTIONS", timeout=ANSWER_TIMEOUT
    ) as sent:
        operation.locator("button.execute").click()
    request_id = sent.value.headers["x-request-id"]
    answer = operation.locator(".live-responses-table tr.response")
    expect(answer.locator(".headerline", has_text=request_id)).to_be_visible()
    code = answer.locator(".response-col_status").inner_text()
    text = answer.locator(".highlight-code code").inner_text()
    return int(code), json.loads(text)


def screenshot_between(page: Page, top: Locator, bottom: Locator, path: Path) -> None:
    """A full-width screenshot from the top of ``top`` to the bottom of ``bottom``."""
    first, last = top.bounding_box(), bottom.bounding_box()
    assert first and last, "nothing to photograph"
    scroll = page.evaluate("[window.scrollX, window.scrollY]")
    height = last["y"] + last["height"] - first["y"] + 16
    clip = {"x": 0, "y": first["y"] + scroll[1] - 8, "width": page.viewport_size["width"]}
    page.screenshot(path=path, full_page=True, clip=clip | {"height": height})
