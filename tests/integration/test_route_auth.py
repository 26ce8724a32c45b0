"""Every route of the app but the health checks, the docs and GET /resource/auth needs a token."""

from mlservice.app import create_app

#: Routes anyone may call: the health checks, the docs, and the exchange of a password for a token.
PUBLIC_PATHS = {"/healthz", "/readyz", "/docs", "/docs/<name>", "/openapi.yaml", "/openapi.json"}
PUBLIC_ROUTES = {("GET", "/resource/auth")}


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
            values = {name: f"placeholder-{name}" for name in rule.arguments}
            routes.append((method, rule.rule, urls.build(rule.endpoint, values, method=method)))
    return sorted(routes)


def test_every_protected_route_answers_401_without_a_token(settings, client):
    routes = protected_routes(create_app(settings))
    rules = {(method, rule) for method, rule, _ in routes}
    assert {
        ("POST", "/resource/predict"),
        ("POST", "/resource/models/<model_id>/predict"),
        ("GET", "/resource/models/<model_id>/download"),
        ("DELETE", "/resource/users/<username>"),
        ("GET", "/resource/init"),
    } <= rules
    failures = []
    for method, rule, path in routes:
        response = client.request(method, path)
        try:
            body = response.json()
        except ValueError:
            body = None
        well_formed = (
            isinstance(body, dict) and set(body) == {"status"} and isinstance(body["status"], str)
        )
        if response.status_code != 401 or not well_formed:
            failures.append(f"{method} {rule}: {response.status_code} {response.text[:120]!r}")
    assert failures == [], f"{len(failures)} of {len(routes)} routes:\n" + "\n".join(failures)
