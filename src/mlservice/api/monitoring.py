"""``GET /metrics`` for Prometheus, and the request hooks that record the API's metrics.

The metrics are for operators, not clients: they are served on Gunicorn's own
port, which only the internal network reaches (Prometheus scrapes the API
directly). NGINX answers 404 for ``/metrics``, and so does this route for any
request that came through a proxy (``X-Forwarded-For``), should a proxy ever
pass one on. It is not in the public contract (ml-service.yml).

The hooks run for every request of the app: the route's template, method,
status and latency; predictions by model kind and engine (the engine from the
answer's ``X-Model-Engine``, the rows from ``g.prediction_rows``, which the
predict route sets); token issuance; accepted upload sizes.
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, g, request

from .. import telemetry
from ..celery_app import SHORT_QUEUE, TRAINING_QUEUE
from ..errors import NotFound
from . import uploads
from .services import services

bp = Blueprint("monitoring", __name__)

#: Where Prometheus scrapes the API (Gunicorn's port only).
PATH = "/metrics"

#: Endpoints whose answers are predictions, and the kind of model each serves.
PREDICT_ENDPOINTS = {
    "predict.predict": "default",
    "models.predict": "user",
    "registry.predict_alias": "user",
    "registry.predict_version": "user",
    "v2.infer": "user",  # the default model's: g.prediction_kind says so (api/v2.py)
}
#: Endpoints that take uploads, and what they take.
UPLOAD_ENDPOINTS = {"datasets.upload": "dataset", "models.upload": "model"}
#: The endpoint that issues tokens.
TOKEN_ENDPOINT = "auth.issue_token"


@bp.get(PATH)
def metrics() -> Response:
    """Every API process's metrics, the Celery queue lengths and the models' input drift
    (``mlservice_feature_drift``), in Prometheus's text format."""
    if request.headers.get("X-Forwarded-For"):
        raise NotFound("not found")
    ctx = services()
    queues = telemetry.QueueDepth(ctx.redis, (SHORT_QUEUE, TRAINING_QUEUE))
    drift = telemetry.FeatureDrift(ctx.monitor.gauges)
    return Response(telemetry.exposition(queues, drift), content_type=telemetry.CONTENT_TYPE)


@bp.before_app_request
def _start_clock() -> None:
    """Note when the request reached Flask."""
    g.metrics_started = time.perf_counter()


@bp.after_app_request
def _record(response: Response) -> Response:
    """Count the answer, by route template (never the path: its ids would be unbounded)."""
    started = g.get("metrics_started")
    seconds = time.perf_counter() - started if started is not None else 0.0
    rule = request.url_rule.rule if request.url_rule is not None else None
    status = response.status_code
    telemetry.http_request(rule, request.method, status, seconds)
    endpoint = request.endpoint
    if endpoint in PREDICT_ENDPOINTS and status == 200:
        telemetry.prediction(
            g.get("prediction_kind") or PREDICT_ENDPOINTS[endpoint],
            response.headers.get("X-Model-Engine"),
            g.get("prediction_rows"),
        )
    elif endpoint in UPLOAD_ENDPOINTS and status == 201 and (size := uploads.body_size()):
        telemetry.upload(UPLOAD_ENDPOINTS[endpoint], size)
    elif endpoint == TOKEN_ENDPOINT:
        telemetry.token_request(status)
    return response
