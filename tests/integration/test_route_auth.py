"""Every route of the app but the health checks, the docs and GET /resource/auth needs a token."""

from mlservice.api import monitoring
from mlservice.app import create_app

#: Routes anyone may call: the health checks, the docs, and the exchange of a password for a token.
PUBLIC_PATHS = {"/healthz", "/readyz", "/docs", "/docs/<name>", "/openapi.yaml", "/openapi.json"}
#: The Open Inference Protocol's probes and server metadata, public like /healthz.
PUBLIC_PATHS |= {"/v2", "/v2/", "/v2/health/live", "/v2/health/ready"}
#: Not behind NGINX at all: Prometheus scrapes it on Gunicorn's own port (test_metrics.py).
PUBLIC_PATHS.add(monitoring.PATH)
#: The web console's page and files: static, it calls the API with the user's token.
PUBLIC_PATHS |= {"/ui", "/ui/", "/ui/assets/<name>"}
PUBLIC_ROUTES = {("GET", "/resource/auth")}
PLACEHOLDERS = {
    "dataset_id": "0" * 32,
    "model_id": "0" * 32,
    "search_id": "0" * 32,
    "task_id": "00000000-0000-0000-0000-000000000000",
    "username": "nobody",
    "name": "swagger-ui.css",  # also a registered model's name
    "extension": "png",
    "alias": "production",
    "version": 1,
}


def protected_routes(app) -> list[tuple[str, str, str]]:
    """(method, rule, path) for every route that needs a token, path variables filled in."""
    urls = app.url_map.bind("localhost")
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.rule in PUBLIC_PATHS:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if (method, rule.rule) in PUBLIC_ROUTES:
                continue
            # Ids in the service's own formats (any other is 404 before auth).
            values = {name: PLACEHOLDERS[name] for name in rule.arguments}
            routes.append((method, rule.rule, urls.build(rule.endpoint, values, method=method)))
    return sorted(routes)


def test_every_protected_route_answers_401_without_a_token(settings, client):
    routes = protected_routes(create_app(settings))
    rules = {(method, rule) for method, rule, _ in routes}
    assert {
        ("POST", "/resource/predict"),
        ("POST", "/resource/models/<hexid:model_id>/predict"),
        ("GET", "/resource/models/<hexid:model_id>/download"),
        ("DELETE", "/resource/users/<username:username>"),
        ("GET", "/resource/init"),
        ("POST", "/v2/models/<regname:name>/infer"),
    } <= rules
    failures = []
    for method, rule, path in routes:
        response = client.request(method, path)
        try:
            body = response.json()
        except ValueError:
            body = None
        key = "error" if rule.startswith("/v2/") else "status"  # the V2 routes' word
        well_formed = isinstance(body, dict) and set(body) == {key} and isinstance(body[key], str)
        if response.status_code != 401 or not well_formed:
            failures.append(f"{method} {rule}: {response.status_code} {response.text[:120]!r}")
    assert failures == [], f"{len(failures)} of {len(routes)} routes:\n" + "\n".join(failures)


def test_ids_not_in_the_services_format_are_404_before_anything(client, admin_token):
    """Ids become Redis keys and file names: a colon, a dot or any other shape never reaches
    a route (``default:bundle`` once read another key)."""
    for path in (
        "/resource/models/default:bundle",
        "/resource/models/default:version",
        "/resource/models/default",
        "/resource/models/" + "0" * 31 + "g",
        "/resource/models/" + "A" * 32,
        "/resource/datasets/..%2F..%2Fetc",
        "/resource/datasets/" + "0" * 33,
        "/resource/task/status/not-a-task",
        "/resource/models/" + "0" * 32 + ":x/download",
    ):
        response = client.get(path, admin_token)
        assert response.status_code == 404, path
        assert set(response.json()) == {"status"}, path
    response = client.delete("/resource/users/bad:name", admin_token)
    assert response.status_code == 404
