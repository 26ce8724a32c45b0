"""/healthz and /readyz through NGINX, and NGINX's own behaviour."""


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_sees_redis_and_a_worker(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    assert response.json()["workers"] >= 1


def test_security_headers_and_no_server_version(client):
    response = client.get("/healthz")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Server"] == "nginx"  # server_tokens off: no version


def test_unknown_path_is_json_404(client):
    response = client.get("/no/such/path")
    assert response.status_code == 404
    assert "status" in response.json()


def test_wrong_method_is_json_405(client):
    response = client.delete("/healthz")
    assert response.status_code == 405
    assert "status" in response.json()
