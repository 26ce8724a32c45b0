"""Celery tasks. Each is a thin shell around domain functions that know nothing of Celery."""

from __future__ import annotations

from typing import Any

from . import bundles, model_store, redis_client, security, training
from .celery_app import app
from .config import get_settings


@app.task(bind=True, name="mlservice.tasks.init_service")
def init_service(self) -> dict[str, Any]:
    """Train the service's default model and publish it to every API worker."""
    settings = get_settings()
    store = redis_client.connect(settings.redis)

    def progress(fraction: float, message: str) -> None:
        self.update_state(state="PROGRESS", meta={"progress": fraction, "status": message})

    bundle = training.train_default_model(settings.default_model, progress)
    secret = security.service_secret(store, settings.secret_key)
    version = model_store.publish(store, model_store.DEFAULT_MODEL_ID, bundles.dumps(bundle, secret))
    return {
        "model_id": model_store.DEFAULT_MODEL_ID,
        "version": version,
        "estimator": bundle.estimator,
        "metrics": bundle.metrics,
    }
