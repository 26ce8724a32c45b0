"""``POST /resource/models/<id>/predictions``: score a stored data set, as a Celery job.

Everything a request can get wrong (fields, ownership, the model's status,
the data set's columns and their types) is checked here from metadata, so
the client hears at once; the job itself (:mod:`mlservice.serving.scoring`)
runs on a worker and its result names the new data set.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, Response

from .. import task_status
from ..errors import NotFound
from ..serving import outputs, scoring, scoring_tasks
from ..serving.cache import ModelNotPublished
from ..store import published
from ..store.catalog import Catalog
from .auth import current_identity, require_token
from .parsing import json_body
from .predict import check_ready
from .services import services
from .tasks import accepted

bp = Blueprint("scoring", __name__, url_prefix="/resource/models")


@bp.post("/<hexid:model_id>/predictions")
@require_token()
def score_dataset(model_id: str) -> tuple[Response, int, dict[str, str]]:
    """Check the request, enqueue the job → 202 ``{model_id, task_id, status_url}``."""
    ctx = services()
    identity = current_identity()
    scoring_request = scoring.parse_request(json_body())
    model = ctx.models.catalog.get(model_id, identity)
    dataset = ctx.datasets.catalog.get(scoring_request.dataset_id, identity)
    check_ready(model_id, model)
    scoring.check_request(scoring_request, dataset, model.get("input_schema", []))
    if scoring_request.probabilities:  # which estimators give them, the bundle knows
        try:
            _, predictor = ctx.cache.get(model_id, published.current_version(ctx.store, model_id))
        except ModelNotPublished:
            raise NotFound(f"model {model_id!r} was deleted") from None
        outputs.check_probabilities(predictor.bundle, True)
    task_id = uuid.uuid4().hex
    job = scoring.ScoringJob(model_id, Catalog.new_id(), identity.username, scoring_request)
    task_status.record_owner(ctx.store, task_id, identity.username)
    scoring_tasks.score_dataset.apply_async(
        (job.model_id, job.output_id, job.owner, scoring_request.as_json()), task_id=task_id
    )
    return accepted(task_id, model_id=model_id)
