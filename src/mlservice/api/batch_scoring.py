"""``POST /resource/models/<id>/predictions``: score a stored data set, as a Celery job.

Everything a request can get wrong (fields, ownership, the model's status,
the data set's columns and their types) is checked here from metadata, so
the client hears at once; the job itself (:mod:`mlservice.serving.scoring`)
runs on a worker and its result names the new data set.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, Response

from ..celery_app import TaskName
from ..serving import scoring
from ..store.catalog import Catalog
from ..training import allowed_estimators
from .auth import current_identity, require_token
from .parsing import json_body
from .predict import check_ready
from .services import services
from .tasks import accepted

bp = Blueprint("scoring", __name__, url_prefix="/resource/models")


@bp.post("/<hexid:model_id>/predictions")
@require_token()
def start_scoring(model_id: str) -> tuple[Response, int, dict[str, str]]:
    """Check the request, enqueue the job → 202 ``{model_id, ignored_columns, task_id,
    status_url}``."""
    ctx = services()
    identity = current_identity()
    scoring_request = scoring.parse_scoring_request(json_body())
    model = ctx.models.catalog.get(model_id, identity)
    dataset = ctx.datasets.catalog.get(scoring_request.dataset_id, identity)
    check_ready(model_id, model)
    ignored = scoring.check_request(scoring_request, dataset, model.get("input_schema", []))
    if scoring_request.probabilities:  # the estimator and its parameters tell, unloaded
        allowed_estimators.check_probabilities(model.get("estimator", ""), model.get("params", {}))
    task_id = uuid.uuid4().hex
    job = scoring.ScoringJob(model_id, Catalog.new_id(), identity, scoring_request)
    ctx.enqueue(TaskName.SCORE_DATASET, job.task_args(), task_id=task_id, owner=job.owner_id)
    return accepted(task_id, model_id=model_id, ignored_columns=ignored)
