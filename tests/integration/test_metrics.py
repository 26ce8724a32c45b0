"""Prometheus metrics: the API's GET /metrics on Gunicorn's own port, the worker's on its port.

Counters move by exactly what known requests did, summed over both Gunicorn
workers (multiprocess mode); NGINX never serves /metrics.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests
from prometheus_client.parser import text_string_to_metric_families

from mlservice.celery_app import SHORT_QUEUE, TRAINING_QUEUE
from mlservice.telemetry import queue_keys
from tests.helpers import eventually

PREDICT_ROUTE = "/resource/predict"
MODEL_ROUTE = "/resource/models/<hexid:model_id>"


def scrape(url: str, **headers: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a metrics page, by name and labels."""
    response = requests.get(f"{url}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def api_url(stack) -> str:
    return f"http://127.0.0.1:{stack.api_port}"


def worker_url(stack) -> str:
    return f"http://127.0.0.1:{stack.worker_metrics_port}"


def test_nginx_never_serves_metrics(client):
    for path in ("/metrics", "/metrics?x=1"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json() == {"status": "not found"}


def test_the_api_refuses_a_scrape_that_came_through_a_proxy(stack):
    response = requests.get(
        f"{api_url(stack)}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=30
    )
    assert response.status_code == 404
    assert response.json() == {"status": "not found"}


def test_predictions_from_both_workers_are_counted_exactly(
    stack, admin_token, initialised, iris_record
):
    """Concurrent requests reach both Gunicorn workers; /metrics counts all of them, once."""
    records = [iris_record] * 3
    before = scrape(api_url(stack))
    answered: list[tuple[str, str]] = []

    def call(_):
        with requests.Session() as session:  # a new connection per call: any worker
            response = session.post(
                f"{stack.url}/resource/predict",
                json=records,
                headers={"Authorization": f"Bearer {admin_token}"},
                timeout=30,
            )
        assert response.status_code == 200, response.text
        return response.headers["X-Served-By"], response.headers["X-Model-Engine"]

    def two_workers_answered() -> bool:
        with ThreadPoolExecutor(max_workers=16) as pool:
            answered.extend(pool.map(call, range(32)))
        return len({worker for worker, _ in answered}) >= 2

    eventually(two_workers_answered, timeout=60, interval=0, retry_on=())
    engines = {engine for _, engine in answered}
    assert len(engines) == 1
    engine = engines.pop()
    after = scrape(api_url(stack))
    labels = {"kind": "default", "engine": engine}
    calls = len(answered)
    assert value(after, "mlservice_predictions_total", **labels) == (
        value(before, "mlservice_predictions_total", **labels) + calls
    )
    route = {"route": PREDICT_ROUTE, "method": "POST"}
    assert value(after, "mlservice_http_requests_total", **route, status="200") == (
        value(before, "mlservice_http_requests_total", **route, status="200") + calls
    )
    assert value(after, "mlservice_http_request_duration_seconds_count", **route) == (
        value(before, "mlservice_http_request_duration_seconds_count", **route) + calls
    )
    assert value(after, "mlservice_prediction_rows_count", **labels) == (
        value(before, "mlservice_prediction_rows_count", **labels) + calls
    )
    assert value(after, "mlservice_prediction_rows_sum", **labels) == (
        value(before, "mlservice_prediction_rows_sum", **labels) + 3 * calls
    )
    # No model id becomes a label value, but in the drift gauge: drift is per model, and
    # its series are bounded (telemetry.DRIFT_SERIES_MODELS; docs/monitoring.md).
    assert not any(
        "model_id" in dict(labels) or any(len(v) == 32 for _, v in labels)
        for name, labels in after
        if name != "mlservice_feature_drift"
    )


def test_requests_are_counted_by_route_template_and_status(stack, client, admin_token):
    before = scrape(api_url(stack))
    for model_id in ("0" * 32, "1" * 32, "2" * 32):
        assert client.get(f"/resource/models/{model_id}", admin_token).status_code == 404
    assert client.get("/no/such/page").status_code == 404
    after = scrape(api_url(stack))
    missing = {"route": MODEL_ROUTE, "method": "GET", "status": "404"}
    assert value(after, "mlservice_http_requests_total", **missing) == (
        value(before, "mlservice_http_requests_total", **missing) + 3
    )
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert value(after, "mlservice_http_requests_total", **unmatched) == (
        value(before, "mlservice_http_requests_total", **unmatched) + 1
    )


def test_tokens_issued_and_refused_are_counted(stack, client, new_user):
    name, password, _ = new_user()  # one token issued here
    before = scrape(api_url(stack))
    for _ in range(2):
        client.token(name, password)
    for _ in range(3):
        assert client.get("/resource/auth", auth=(name, "wrong-password")).status_code == 401
    after = scrape(api_url(stack))
    for outcome, count in (("issued", 2), ("refused", 3), ("throttled", 0)):
        assert value(after, "mlservice_tokens_total", outcome=outcome) == (
            value(before, "mlservice_tokens_total", outcome=outcome) + count
        ), outcome


def test_upload_bytes_are_counted(stack, client, admin_token, customers):
    data = customers.to_csv(index=False).encode()
    before = scrape(api_url(stack))
    response = client.post(
        "/resource/datasets", admin_token, files={"file": ("customers.csv", data, "text/csv")}
    )
    assert response.status_code == 201, response.text
    sent = int(response.request.headers["Content-Length"])
    assert sent > len(data)  # the multipart body around the file
    after = scrape(api_url(stack))
    assert value(after, "mlservice_upload_bytes_total", kind="dataset") == (
        value(before, "mlservice_upload_bytes_total", kind="dataset") + sent
    )
    client.delete(f"/resource/datasets/{response.json()['id']}", admin_token)


def test_queue_lengths_are_read_from_redis_at_scrape_time(stack, store):
    def direct() -> dict[str, int]:
        return {q: sum(store.llen(k) for k in queue_keys(q)) for q in (SHORT_QUEUE, TRAINING_QUEUE)}

    def agree() -> bool:
        seen = direct()
        samples = scrape(api_url(stack))
        scraped = {q: value(samples, "mlservice_celery_queue_length", queue=q) for q in seen}
        assert scraped == seen == direct(), (scraped, seen)
        return True

    eventually(agree, timeout=30)


def test_the_worker_counts_its_tasks(stack, client, admin_token):
    """A synchronous init runs one init_service in a pool process; the main process serves it."""
    task = "mlservice.tasks.init_service"
    before = scrape(worker_url(stack))
    assert client.get("/resource/init", admin_token).status_code == 204

    def counted() -> bool:
        after = scrape(worker_url(stack))
        done = value(after, "mlservice_celery_tasks_total", task=task, outcome="success")
        assert (
            done == value(before, "mlservice_celery_tasks_total", task=task, outcome="success") + 1
        )
        timed = value(
            after, "mlservice_training_duration_seconds_count", task=task, outcome="success"
        )
        assert (
            timed
            == value(
                before, "mlservice_training_duration_seconds_count", task=task, outcome="success"
            )
            + 1
        )
        return True

    eventually(counted, timeout=30, message="the worker's metrics did not count the init")
