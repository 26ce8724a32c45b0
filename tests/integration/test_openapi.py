"""ml-service.yml is a valid OpenAPI 3 document and matches the app's routes."""

import re

import yaml
from openapi_spec_validator import validate

from mlservice.api import monitoring
from mlservice.app import create_app
from mlservice.config import REPO_DIR

SPEC = REPO_DIR / "ml-service.yml"
#: Routes outside the public contract: Prometheus's, on Gunicorn's own port (NGINX: 404).
#: Not API operations: the metrics port, and the web console's page and files.
INTERNAL_PATHS = {monitoring.PATH, "/ui", "/ui/", "/ui/assets/<name>"}


def load_spec() -> dict:
    return yaml.safe_load(SPEC.read_text())


def test_spec_is_valid_openapi_3():
    spec = load_spec()
    assert spec["openapi"].startswith("3.")
    validate(spec)


def test_spec_and_app_routes_agree(settings):
    app = create_app(settings)
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule in INTERNAL_PATHS:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method.lower()))
    documented = {
        (path, method)
        for path, item in load_spec()["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert routes == documented


def test_protected_operations_declare_security():
    spec = load_spec()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            effective = operation.get("security", spec.get("security"))
            if path.startswith(("/resource/", "/v2/models/")):
                assert effective, f"{method.upper()} {path} lacks security"
            else:
                assert effective == [], f"{method.upper()} {path} should need no token"
