"""What a browser makes of the service: Swagger UI and fetch() from pages, in headless Chromium.

test_cors.py and test_docs.py check the headers and documents with requests;
only a browser enforces CORS, so only a browser shows that a page on another
site can really use the API (and read its errors, NGINX's own included) and
that a site not allowed cannot. Each test leaves a screenshot in
var/screenshots/ for a person to look at.
"""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

from mlservice.config import REPO_DIR
from mlservice.stack import free_port
from tests.browser_pages import (
    RENDER_TIMEOUT,
    StaticSite,
    authorize,
    choose_server,
    execute,
    open_try_it_out,
    screenshot_between,
    write_pages,
)

CHROMIUM = Path("/usr/lib/chromium/chromium")
SCREENSHOTS = REPO_DIR / "var" / "screenshots"
MISSING_COLUMN = "record 0 lacks column(s) 'petal width (cm)'; send null for a missing value"
#: The contract in the repository, as a user opens it (not the copy the service serves).
CONTRACT_FILE = REPO_DIR / "ml-service.yml"
#: Where `make run` listens by default: the committed contract's first server.
MAKE_RUN_URL = "http://127.0.0.1:8880"
TEMPLATED_SERVER = "{scheme}://{host}:{port}"


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium under Playwright, once for the module."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: `make test` installs it (chromium, fonts-dejavu-core)"
        )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh page (its own context: no storage shared between tests)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def sites(stack, other_origin, tmp_path_factory):
    """The same pages on the allowed ``other_origin`` and on a third origin not allowed."""
    folder = tmp_path_factory.mktemp("other-site")
    write_pages(folder, stack.url + "/openapi.yaml", CONTRACT_FILE)
    allowed = StaticSite(folder, int(other_origin.rsplit(":", 1)[1]))
    third = StaticSite(folder, free_port())
    yield allowed, third
    allowed.close()
    third.close()


def fetch_page(page, site: StaticSite):
    """Open ``site``'s fetch page; a function calling its ``call(label, url, init)``."""
    page.goto(site.origin + "/fetch.html")
    return lambda label, url, **init: page.evaluate("a => call(...a)", [label, url, init])


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_swagger_ui_on_another_origin_tries_the_api_out(
    page, sites, stack, admin_credentials, initialised, iris_record
):
    """Authorize with Basic, get a token, Authorize with it, predict: all from another site."""
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(sites[0].origin + "/swagger.html")
    expect(page.locator("#operations-auth-getToken")).to_be_visible(timeout=RENDER_TIMEOUT)
    assert page.locator(".servers select").input_value() == stack.url

    authorize(page, "basicAuth", username=admin_credentials[0], password=admin_credentials[1])
    status, token = execute(page, open_try_it_out(page, "auth", "getToken"))
    assert status == 200
    assert set(token) == {"token", "token_type", "expires_in"}
    assert (token["token_type"], token["expires_in"]) == ("Bearer", 3600)  # the stack's 1 hour

    authorize(page, "bearerAuth", value=token["token"])
    predict = open_try_it_out(page, "prediction", "predict")
    status, body = execute(page, predict, iris_record)
    assert status == 200
    assert body["predictions"] == ["setosa"]  # ?probabilities=true is the form's example
    assert set(body["probabilities"][0]) == {"setosa", "versicolor", "virginica"}
    parameters = predict.locator(".opblock-section-header").first
    answer = predict.locator(".live-responses-table")
    screenshot_between(
        page, parameters, answer, SCREENSHOTS / "swagger-cross-origin-try-it-out.png"
    )

    del iris_record["petal width (cm)"]
    assert execute(page, predict, iris_record) == (422, {"status": MISSING_COLUMN})
    expect(answer).to_contain_text("Error: UNPROCESSABLE ENTITY")
    screenshot_between(page, parameters, answer, SCREENSHOTS / "swagger-cross-origin-422.png")

    for shown in page.locator(".live-responses-table").all_inner_texts():
        assert "Failed to fetch" not in shown and "CORS" not in shown
    assert [text for text in console if "CORS" in text or "Failed to fetch" in text] == []


def test_swagger_ui_on_another_origin_tries_the_committed_contract_out(
    page, sites, stack, admin_credentials, initialised, iris_record
):
    """Swagger UI on another site opens the repository's ml-service.yml, not the served copy.

    Its first server is a real address (Swagger calls the first server as it
    is, so a templated one there was sent as "{scheme}://{host}:{port}"). The
    test stack is not on `make run`'s port, so the user does what the file's
    servers offer: picks the templated one and types the stack's host and port.
    """
    page.goto(sites[0].origin + "/swagger-file.html")
    expect(page.locator("#operations-auth-getToken")).to_be_visible(timeout=RENDER_TIMEOUT)
    servers = page.locator(".servers > label > select")
    assert servers.input_value() == MAKE_RUN_URL  # what Swagger calls unless told otherwise
    expect(page.locator(".servers .computed-url")).to_have_count(0)  # no variables to fill
    offered = [option.get_attribute("value") for option in servers.locator("option").all()]
    assert offered == [MAKE_RUN_URL, TEMPLATED_SERVER]

    address = urlsplit(stack.url)
    assert (address.scheme, address.hostname) == ("http", "127.0.0.1")
    choose_server(
        page, TEMPLATED_SERVER, scheme="http", host=address.hostname, port=str(address.port)
    )
    expect(page.locator(".servers .computed-url code")).to_have_text(stack.url)

    authorize(page, "basicAuth", username=admin_credentials[0], password=admin_credentials[1])
    get_token = open_try_it_out(page, "auth", "getToken")
    status, token = execute(page, get_token)
    assert status == 200
    assert set(token) == {"token", "token_type", "expires_in"}
    expect(get_token.locator(".request-url")).to_contain_text(stack.url + "/resource/auth")

    authorize(page, "bearerAuth", value=token["token"])
    predict = open_try_it_out(page, "prediction", "predict")
    status, body = execute(page, predict, iris_record)
    assert status == 200
    assert body["predictions"] == ["setosa"]
    page.locator(".scheme-container").screenshot(path=SCREENSHOTS / "swagger-file-servers.png")
    screenshot_between(
        page,
        predict.locator(".opblock-section-header").first,
        predict.locator(".live-responses-table"),
        SCREENSHOTS / "swagger-file-try-it-out.png",
    )


def test_docs_render_every_operation_of_the_contract(page, client):
    """/docs on the service itself shows each path and method under its first tag."""
    contract = requests.get(client.url + "/openapi.json", timeout=10).json()
    operations = [
        (operation["tags"][0], operation["operationId"])
        for methods in contract["paths"].values()
        for operation in methods.values()
    ]
    assert {("auth", "getToken"), ("prediction", "predict")} <= set(operations)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(client.url + "/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=RENDER_TIMEOUT)
    for tag, operation_id in operations:
        expect(page.locator(f"#operations-{tag}-{operation_id}")).to_have_count(1)
    assert page.locator(".opblock").count() == len(operations)
    assert page.locator(".servers select").input_value() == client.url
    assert errors == []
    top, operations_end = page.locator(".information-container"), page.locator(".opblock").last
    screenshot_between(page, top, operations_end, SCREENSHOTS / "docs.png")


def test_docs_page_gets_no_password_dialog(page, client):
    """A 401 from /resource/auth to the /docs page's script has no Basic challenge.

    With one, the browser would open its own password dialog over Swagger UI.
    """
    page.goto(client.url + "/docs")
    answer = page.evaluate(
        """async () => {
            const response = await fetch("/resource/auth");
            return [response.status, response.headers.get("www-authenticate"),
                    await response.json()];
        }"""
    )
    assert answer == [401, None, {"status": "send a user name and password with HTTP Basic"}]


def test_a_disallowed_origin_cannot_read_the_api(page, sites, client, admin_credentials):
    """The same fetch fails on a site that is not allowed and works on one that is."""
    url, credentials = client.url + "/resource/auth", basic(*admin_credentials)
    call = fetch_page(page, sites[1])
    refused = call("GET " + url, url, headers={"Authorization": credentials})
    assert refused == {"error": "TypeError: Failed to fetch"}
    page.locator("body").screenshot(path=SCREENSHOTS / "fetch-disallowed-origin.png")

    call = fetch_page(page, sites[0])
    answer = call("GET " + url, url, headers={"Authorization": credentials})
    assert answer["status"] == 200
    assert set(json.loads(answer["body"])) == {"token", "token_type", "expires_in"}
    page.locator("body").screenshot(path=SCREENSHOTS / "fetch-allowed-origin.png")


def test_the_allowed_origin_reads_errors(
    page, sites, client, nginx_alone, admin_token, initialised, iris_record
):
    """A 401 and a 422 of the API, and NGINX's own 503 and 413, are all readable JSON."""
    call = fetch_page(page, sites[0])
    predict = client.url + "/resource/predict"
    del iris_record["petal width (cm)"]

    def predict_with(token: str):
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        return {"method": "POST", "body": json.dumps(iris_record), "headers": headers}

    answers = {
        401: call("bad token", predict, **predict_with("not-a-token")),
        422: call("missing column", predict, **predict_with(admin_token)),
        503: call("no API behind NGINX", nginx_alone.url + "/resource/estimators"),
        413: call(
            "3 MiB upload",
            nginx_alone.url + "/resource/datasets",
            method="POST",
            bodySize=3 * 1024 * 1024,
            headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "text/csv"},
        ),
    }
    page.locator("body").screenshot(path=SCREENSHOTS / "fetch-errors.png")
    assert {code: answer.get("status") for code, answer in answers.items()} == {
        401: 401,
        422: 422,
        503: 503,
        413: 413,
    }
    assert {code: json.loads(answer["body"]) for code, answer in answers.items()} == {
        401: {"status": "malformed bearer token: not a JSON Web Token"},
        422: {"status": MISSING_COLUMN},
        503: {"status": "the API is not reachable behind NGINX; retry shortly"},
        413: {"status": "request body too large"},
    }


def test_every_operation_is_callable_from_the_allowed_origin(page, sites, client, admin_token):
    """Each operation, sent as "Try it out" would (its method, a bearer token, its first
    request media type), gets an HTTP answer: the preflight refuses none of them.

    Bodies are empty and path ids made up, so the answers are 4xx; nothing is changed
    (init is sent with a bad ``async`` flag, refused before anything is queued).
    """
    contract = requests.get(client.url + "/openapi.json", timeout=10).json()
    call = fetch_page(page, sites[0])
    answers = {}
    for path, methods in contract["paths"].items():
        for method, operation in methods.items():
            url = client.url + re.sub(r"\{[^}]+\}", "placeholder", path)
            if path == "/resource/init":
                url += "?async=maybe"
            headers = {"Authorization": f"Bearer {admin_token}", "Accept": "application/json"}
            init = {"method": method.upper(), "headers": headers}
            media_types = list(operation.get("requestBody", {}).get("content", {}))
            if media_types:
                headers["Content-Type"] = media_types[0]
                init["body"] = ""
            answer = call(f"{method.upper()} {path}", url, **init)
            answers[(method, path)] = answer.get("status", answer.get("error"))
    page.locator("body").screenshot(path=SCREENSHOTS / "fetch-every-operation.png")
    refused = {
        operation: status for operation, status in answers.items() if status not in range(200, 600)
    }
    assert refused == {}
    assert len(answers) == len([m for methods in contract["paths"].values() for m in methods])


def test_the_allowed_origin_reads_the_rate_limit(page, sites, client):
    """80 token requests at once: NGINX's 429s are readable, X-Request-ID exposed.

    This exhausts /resource/auth's rate limit (burst 50, 10 r/s), so the test
    ends by letting it refill, for the tests that get tokens after it.
    """
    fetch_page(page, sites[0])
    try:
        answers = page.evaluate("url => burst(url, 80)", client.url + "/resource/auth")
        page.locator("body").screenshot(path=SCREENSHOTS / "fetch-rate-limited.png")
    finally:
        time.sleep(6)
    limited = [answer for answer in answers if answer.get("status") == 429]
    assert limited, answers
    assert {answer.get("status") for answer in answers} == {401, 429}
    for answer in limited:
        assert json.loads(answer["body"]) == {
            "status": "too many token requests; retry in a moment"
        }
        assert re.fullmatch("[0-9a-f]{32}", answer["requestId"])
        assert answer["retryAfter"] == "1"
