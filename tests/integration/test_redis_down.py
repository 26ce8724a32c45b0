"""With Redis gone, every route answers 503 JSON with Retry-After, never a 500.

A stack of its own (redis-server, Gunicorn, NGINX; no worker), whose Redis
is stopped once a token is in hand: the session's stack is left alone.
"""

import json

import pytest
import requests

from mlservice.app import create_app
from mlservice.config import load_settings
from mlservice.stack import Stack, free_port
from tests.conftest import ADMIN
from tests.integration.test_route_auth import PLACEHOLDERS

#: Routes that need no Redis at all.
WITHOUT_REDIS = {
    "/healthz",
    "/docs",
    "/docs/<name>",
    "/openapi.yaml",
    "/openapi.json",
    "/v2",
    "/v2/",
    "/v2/health/live",
    "/ui",
    "/ui/",
    "/ui/assets/<name>",
}
#: Readiness probes say what is down in their own words.
READINESS = {"/readyz", "/v2/health/ready"}
#: The Open Inference Protocol's errors are {"error": ...} rather than {"status": ...}.
V2_PREFIX = "/v2/"
DOWN = "the service's store (Redis) is not reachable; retry shortly"
#: Served on Gunicorn's own port only (NGINX answers 404): tests/integration/test_metrics.py.
INTERNAL = {"/metrics"}


@pytest.fixture(scope="module")
def orphaned(stack, tmp_path_factory):
    """(URL, a valid admin token, the Flask app) of a stack whose Redis has been stopped."""
    run_dir = tmp_path_factory.mktemp("redis-down")
    alone = Stack(
        run_dir=run_dir,
        http_port=free_port(),
        redis_port=free_port(),
        api_port=free_port(),
        config_path=stack.config_path,
        redis_config_path=run_dir / "redis.properties",
        api_workers=1,
        extra_env=stack.extra_env | {"MLSERVICE_SERVICE_ARTIFACT_DIR": str(run_dir / "a")},
    )
    alone.run_dir.mkdir(parents=True, exist_ok=True)
    alone.logs.mkdir(exist_ok=True)
    alone.start_redis()
    alone.start_api()
    alone.start_nginx()
    token = requests.get(alone.url + "/resource/auth", auth=ADMIN, timeout=10).json()["token"]
    app = create_app(load_settings(alone.env()))  # its URL map, built while Redis is up
    redis_process = alone.processes.pop("redis")
    redis_process.terminate()
    redis_process.wait(timeout=20)
    yield alone.url, token, app
    alone.stop()


def test_every_route_is_503_with_retry_after(orphaned):
    url, token, app = orphaned
    urls = app.url_map.bind("localhost")
    failures = []
    for rule in app.url_map.iter_rules():
        if rule.rule in WITHOUT_REDIS | INTERNAL:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            path = urls.build(rule.endpoint, {n: PLACEHOLDERS[n] for n in rule.arguments})
            headers = {"Authorization": f"Bearer {token}"}
            if (method, rule.rule) == ("GET", "/resource/auth"):
                headers = {"Authorization": "Basic YWRtaW46YWRtaW4tdGVzdC1wYXNzd29yZA=="}
            response = requests.request(method, url + path, headers=headers, timeout=30)
            answer = (response.status_code, response.headers.get("Retry-After"), response.text)
            key = "error" if rule.rule.startswith(V2_PREFIX) else "status"
            expected = (503, "5", json.dumps({key: DOWN}, separators=(",", ":")) + "\n")
            if rule.rule in READINESS:
                expected = (503, "5", answer[2])
            if answer != expected:
                failures.append(f"{method} {rule.rule}: {answer}")
    assert failures == []


def test_routes_without_redis_still_work(orphaned):
    url, _, _ = orphaned
    for path in ("/healthz", "/docs", "/openapi.yaml", "/ui", "/ui/assets/app.js"):
        assert requests.get(url + path, timeout=10).status_code == 200, path
