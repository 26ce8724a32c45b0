"""Errors NGINX and Gunicorn make themselves are the contract's JSON, never HTML.

NGINX bounds request lines and header lines (8 KiB) and answers for itself;
Gunicorn's own limits are lifted so that it never answers first in HTML.
"""

import socket

import pytest
import requests


def raw_answer(url: str, data: bytes) -> bytes:
    """Send ``data`` as is to NGINX; all it sends back until it closes the connection."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def raw_request(url: str, data: bytes) -> tuple[int, dict[str, str], str]:
    """Send ``data`` as is to NGINX; the status, headers and body of its answer."""
    answer = raw_answer(url, data)
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body.decode()


def assert_json_error(status: int, headers: dict[str, str], body: str, expected: int) -> None:
    assert status == expected, body
    assert headers["Content-Type"] == "application/json"
    assert body.startswith('{"status": "') and body.endswith('"}'), body


def test_trace_is_405_json_with_allow(client):
    response = requests.request("TRACE", client.url + "/resource/auth", timeout=10)
    assert_json_error(response.status_code, response.headers, response.text, 405)
    assert response.json() == {
        "status": "method not allowed: TRACE is not served; use GET, POST, PATCH or DELETE "
        "as the contract says"
    }
    assert response.headers["Allow"] == "GET, HEAD, POST, PATCH, DELETE, OPTIONS"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Request-ID"]


def test_the_apis_own_405_carries_its_paths_allow(client):
    """A method NGINX passes on (any but TRACE) that the path does not take."""
    for method in ("PUT", "FOO"):
        response = requests.request(method, client.url + "/resource/models", timeout=10)
        assert response.status_code == 405
        assert response.json() == {"status": "The method is not allowed for the requested URL."}
        assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}


def test_allow_is_only_on_405s(client):
    assert "Allow" not in client.get("/healthz").headers
    assert "Allow" not in client.get("/no/such/path").headers


def test_http_0_9_gets_a_json_body_alone(client):
    """HTTP/0.9 has no status line and no headers: NGINX answers a JSON body, then closes."""
    answer = raw_answer(client.url, b"GET /healthz\r\n")
    assert answer == (b'{"status": "HTTP/0.9 is not supported: send HTTP/1.1 (or 1.0) requests"}')


@pytest.mark.parametrize(
    "request_line, headers, status, words",
    [
        ("GET /healthz HTTP/2.0", "", 505, "HTTP version not supported"),
        ("GET /healthz HTTP/1.1", "Transfer-Encoding: gzip\r\n", 501, "not implemented"),
        ("get /healthz HTTP/1.1", "", 400, "malformed HTTP request"),
    ],
)
def test_nginx_refusals_of_the_protocol_are_json(client, request_line, headers, status, words):
    data = f"{request_line}\r\nHost: x\r\n{headers}\r\n".encode()
    got, answer_headers, body = raw_request(client.url, data)
    assert_json_error(got, answer_headers, body, status)
    assert words in body


def test_a_header_over_8_kib_is_431_json(client):
    response = client.get("/resource/models", headers={"Authorization": "Bearer " + "a" * 9000})
    assert_json_error(response.status_code, response.headers, response.text, 431)
    assert "8 KiB" in response.json()["status"]


def test_a_url_over_8_kib_is_414_json(client):
    response = client.get("/resource/models?q=" + "a" * 9000)
    assert_json_error(response.status_code, response.headers, response.text, 414)


@pytest.mark.parametrize("length", [4200, 7000])
def test_a_long_query_reaches_the_api(client, admin_token, length):
    """Longer than Gunicorn's default request line (4 KiB): the API answers, in JSON."""
    response = client.get("/resource/models?q=" + "a" * length, admin_token)
    assert response.status_code == 200
    assert response.json()["models"] is not None


def test_many_headers_reach_the_api(client, admin_token):
    """More than Gunicorn's default 100 header fields."""
    headers = {f"X-Extra-{i}": "x" for i in range(150)}
    assert client.get("/resource/models", admin_token, headers=headers).status_code == 200


def test_a_malformed_request_is_400_json(client):
    status, headers, body = raw_request(client.url, b"NOT HTTP AT ALL\r\n\r\n")
    assert_json_error(status, headers, body, 400)
    assert body == '{"status": "malformed HTTP request"}'


def test_nginx_internal_locations_are_404_json(client):
    for path in ("/_errors/unavailable", "/_protected/artifacts/x"):
        response = client.get(path)
        assert_json_error(response.status_code, response.headers, response.text, 404)
