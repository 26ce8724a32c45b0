"""CORS through NGINX: the headers a browser needs, on every answer, errors included.

The stack allows ``other_origin`` and https://editor.swagger.io (besides its
own origin); anything else gets no CORS header at all. The browser's view of
the same answers is in test_browser.py.
"""

import pandas as pd
import requests

from tests.helpers import upload

PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": (
        "Authorization, Content-Type, Accept, X-Request-ID, Inference-Header-Content-Length"
    ),
    "Access-Control-Max-Age": "600",
}
EXPOSED = (
    "Location, X-Model-Version, X-Model-Engine, X-Registry-Version, X-Model-Id, X-Request-ID, "
    "Retry-After, Content-Disposition, Inference-Header-Content-Length, X-Ignored-Columns"
)


def cors_headers(response: requests.Response) -> dict[str, str]:
    """The response's Access-Control-* headers."""
    return {
        name: value
        for name, value in response.headers.items()
        if name.lower().startswith("access-control-")
    }


def preflight(url: str, origin: str, method: str = "POST") -> requests.Response:
    return requests.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        timeout=10,
    )


def test_preflight_allows_the_methods_and_headers(client, other_origin):
    response = preflight(client.url + "/resource/predict", other_origin)
    assert response.status_code == 204
    assert cors_headers(response) == {
        "Access-Control-Allow-Origin": other_origin,
        "Access-Control-Expose-Headers": EXPOSED,
        **PREFLIGHT_HEADERS,
    }
    assert response.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert response.content == b""


def test_preflight_is_answered_before_the_rate_limit(client, other_origin):
    """Preflights of /resource/auth never count against its token rate limit."""
    statuses = {preflight(client.url + "/resource/auth", other_origin, "GET").status_code}
    for _ in range(70):
        statuses.add(preflight(client.url + "/resource/auth", other_origin, "GET").status_code)
    assert statuses == {204}


def test_swagger_editor_is_allowed(client):
    response = preflight(client.url + "/resource/auth", "https://editor.swagger.io", "GET")
    assert response.headers["Access-Control-Allow-Origin"] == "https://editor.swagger.io"


def test_the_services_own_origin_is_allowed(client):
    response = client.get("/resource/auth", headers={"Origin": client.url})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == client.url


def test_a_disallowed_origin_gets_no_cors_headers(client):
    for origin in ("https://evil.example", "http://127.0.0.1:1", "null"):
        answers = [
            preflight(client.url + "/resource/predict", origin),
            client.get("/resource/auth", headers={"Origin": origin}),
        ]
        for response in answers:
            assert cors_headers(response) == {}, origin


def test_a_lookalike_origin_is_not_allowed(client):
    """Origins are compared whole: a prefix or suffix of an allowed one does not pass."""
    for origin in ("https://editor.swagger.io.evil.example", "https://editorXswagger.io"):
        assert cors_headers(client.get("/resource/auth", headers={"Origin": origin})) == {}


def test_api_errors_carry_the_headers(client, admin_token, other_origin, initialised):
    """A page can read a 401 and a 422 (and which request it was)."""
    headers = {"Origin": other_origin}
    unauthorised = client.post("/resource/predict", "not-a-token", json={}, headers=headers)
    assert unauthorised.status_code == 401
    invalid = client.post(
        "/resource/predict", admin_token, json={"sepal length (cm)": 5.1}, headers=dict(headers)
    )
    assert invalid.status_code == 422
    for response in (unauthorised, invalid):
        assert cors_headers(response) == {
            "Access-Control-Allow-Origin": other_origin,
            "Access-Control-Expose-Headers": EXPOSED,
        }
        assert response.headers["X-Request-ID"]


def test_a_successful_answer_exposes_the_model_headers(
    client, admin_token, other_origin, initialised, iris_record
):
    response = client.post(
        "/resource/predict", admin_token, json=iris_record, headers={"Origin": other_origin}
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == other_origin
    assert {"X-Model-Version", "X-Model-Engine", "X-Request-ID"} <= set(response.headers)


def test_nginx_own_503_and_413_carry_the_headers(nginx_alone, other_origin):
    headers = {"Origin": other_origin}
    unavailable = requests.get(
        nginx_alone.url + "/resource/estimators", headers=headers, timeout=10
    )
    assert unavailable.status_code == 503
    assert unavailable.json() == {"status": "the API is not reachable behind NGINX; retry shortly"}
    too_large = requests.post(
        nginx_alone.url + "/resource/datasets",
        data=b"x" * (3 * 1024 * 1024),
        headers=headers | {"Content-Type": "text/csv"},
        timeout=30,
    )
    assert too_large.status_code == 413
    assert too_large.json() == {"status": "request body too large"}
    assert unavailable.headers["Retry-After"] == "5"
    assert "Retry-After" not in too_large.headers
    for response in (unavailable, too_large):
        assert cors_headers(response) == {
            "Access-Control-Allow-Origin": other_origin,
            "Access-Control-Expose-Headers": EXPOSED,
        }


def test_nginx_own_body_cap_follows_the_upload_setting(nginx_alone):
    """max_upload_mb (1 here) plus 1 MiB for a multipart envelope: 2 MiB passes NGINX."""
    at_cap = requests.post(
        nginx_alone.url + "/resource/datasets",
        data=b"x" * (2 * 1024 * 1024),
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )
    assert at_cap.status_code == 503  # through NGINX's cap, to the (missing) API


def test_a_download_sent_by_nginx_keeps_every_header(client, admin_token, other_origin):
    """X-Accel-Redirect hands the file to NGINX: CORS, security and cache headers survive."""
    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    dataset_id = upload(client, admin_token, frame)
    response = client.get(
        f"/resource/datasets/{dataset_id}/download", admin_token, headers={"Origin": other_origin}
    )
    assert response.status_code == 200
    assert response.text == frame.to_csv(index=False)
    assert response.headers["Access-Control-Allow-Origin"] == other_origin
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"] == 'attachment; filename="customers.csv"'
    client.delete(f"/resource/datasets/{dataset_id}", admin_token)
