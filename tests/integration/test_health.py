"""/healthz and /readyz through NGINX, and NGINX's own behaviour."""

import time

#: How long a test pauses every Redis client (CLIENT PAUSE): longer than /readyz waits.
PAUSE_MS = 6000


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


def test_readyz_names_the_store_at_once_while_redis_is_paused(client, store):
    """Redis paused for longer than /readyz waits: 503 naming the store, nothing else.

    Had /readyz waited for Redis, it would have answered 200 once the pause ended.
    """
    store.execute_command("CLIENT", "PAUSE", PAUSE_MS, "ALL")
    try:
        response = client.get("/readyz", timeout=60)
    finally:
        time.sleep(PAUSE_MS / 1000)  # the rest of the session finds Redis answering
    assert response.status_code == 503
    assert response.json() == {"status": "not ready: the store (Redis) does not answer"}
    assert client.get("/readyz").status_code == 200
