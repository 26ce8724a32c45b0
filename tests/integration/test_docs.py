"""The service documents itself: Swagger UI at /docs, the contract at /openapi.yaml and .json.

Through NGINX and without a token. The served contract names the origin it
was asked from as its first server when that origin is the service's own
([api] public_urls, the stack's own address, or a server the file names),
so "Try it out" reaches this service on whatever host and port it runs; any
other Host gets the file's servers alone. (test_browser.py looks at the page
in Chromium.)
"""

import json
from pathlib import Path

import pytest
import requests
import swagger_ui_bundle
import yaml
from openapi_spec_validator import validate

from mlservice.config import REPO_DIR

FILE_CONTRACT = yaml.safe_load((REPO_DIR / "ml-service.yml").read_text())
SERVED_FROM = "this service (the origin that served this document)"


def test_openapi_yaml_is_the_file_with_this_origin_first(client):
    response = client.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/yaml; charset=utf-8"
    served = yaml.safe_load(response.text)
    validate(served)
    assert served["servers"][0] == {
        "url": client.url,
        "description": "this service (the origin that served this document)",
    }
    assert served["servers"][1:] == FILE_CONTRACT["servers"]
    assert {**served, "servers": FILE_CONTRACT["servers"]} == FILE_CONTRACT


def test_the_files_first_server_is_a_real_address():
    """Swagger on another origin, opened on the file itself, calls its first server as it is."""
    first, templated = FILE_CONTRACT["servers"]
    assert first["url"] == "http://127.0.0.1:8880" and "variables" not in first
    assert templated["url"] == "{scheme}://{host}:{port}"
    assert {name: v["default"] for name, v in templated["variables"].items()} == {
        "scheme": "http",
        "host": "127.0.0.1",
        "port": "8880",
    }


def test_served_from_the_files_own_address_that_address_is_named_once(client):
    """Asked as 127.0.0.1:8880 (`make run`'s address), the origin replaces the file's entry."""
    response = client.get("/openapi.json", headers={"Host": "127.0.0.1:8880"})
    assert [server["url"] for server in response.json()["servers"]] == [
        "http://127.0.0.1:8880",
        "{scheme}://{host}:{port}",
    ]
    assert response.json()["servers"][0]["description"] == (
        "this service (the origin that served this document)"
    )


def test_openapi_json_is_the_same_document(client):
    as_yaml = yaml.safe_load(client.get("/openapi.yaml").text)
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.text) == as_yaml


def test_a_public_url_of_the_service_is_named_first(client):
    """Asked under one of [api] public_urls (the stack lists http://ml.example:9443)."""
    response = client.get(
        "/openapi.json", headers={"Host": "ml.example:9443", "X-Forwarded-Proto": "https"}
    )
    # NGINX passes the Host on and sets X-Forwarded-Proto to its own scheme (http).
    assert response.json()["servers"] == [
        {"url": "http://ml.example:9443", "description": SERVED_FROM},
        *FILE_CONTRACT["servers"],
    ]


@pytest.mark.parametrize("host", ["evil.example", "ml.example:9444", "127.0.0.1:1", "ML.example"])
def test_any_other_host_gets_the_files_servers_alone(client, host):
    """A forged Host never becomes an address the contract tells Swagger UI to call."""
    for path in ("/openapi.json", "/openapi.yaml"):
        served = yaml.safe_load(client.get(path, headers={"Host": host}).text)
        assert served["servers"] == FILE_CONTRACT["servers"], (path, host)


def test_docs_page_loads_swagger_ui_from_the_service(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    for src in ("/docs/swagger-ui-bundle.js", "/docs/init.js", "/docs/swagger-ui.css"):
        assert f'"{src}"' in page.text
        assert "http" not in src  # no CDN
    init = client.get("/docs/init.js")
    assert init.status_code == 200
    assert 'url: "/openapi.yaml"' in init.text


def test_swagger_ui_files_are_the_pinned_packages(client):
    """Byte for byte the swagger-ui-bundle package's files; nothing else of its folder."""
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        response = client.get(f"/docs/{name}")
        assert response.status_code == 200, name
        expected = Path(swagger_ui_bundle.swagger_ui_path, name).read_bytes()
        assert response.content == expected, name
    for name in ("index.j2", "swagger-initializer.js", "..%2Fconfig.py"):
        missing = client.get(f"/docs/{name}")
        assert missing.status_code == 404, name
        assert set(missing.json()) == {"status"}


def test_docs_need_no_token_and_ignore_a_bad_one(client):
    for path in ("/docs", "/openapi.yaml", "/openapi.json", "/docs/init.js"):
        assert client.get(path).status_code == 200, path
        assert client.get(path, token="not-a-token").status_code == 200, path


def test_docs_are_readable_cross_origin(client, other_origin):
    response = requests.get(client.url + "/openapi.yaml", headers={"Origin": other_origin})
    assert response.headers["Access-Control-Allow-Origin"] == other_origin
