"""``POST /resource/predict`` and the prediction path shared with per-model predict.

This is the hot path. Everything Redis knows that a prediction needs (the
token's user, the model's version and, for a user's model, its record) is
read in one pipelined round trip and remembered by the worker until Redis
says it changed (:mod:`~mlservice.serving.hot_reads`): the common request
makes no round trip, and a delete, a revocation or a retrain is seen by every
worker before the request that made it has answered. The model itself comes
from the worker's cache, loaded once per version.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import quote

import numpy as np
from flask import Blueprint, Response, g, request

from .. import logs
from ..config import LimitsSettings
from ..context import ServiceContext
from ..errors import BadRequest, Conflict, NotFound, NotInitialised
from ..process import served_by
from ..security import Identity
from ..serving import formats, inputs
from ..serving.cache import ModelNotPublished
from ..serving.predictor import Predictor
from ..store import published, user_records
from ..store.records import ModelRecord, ModelStatus
from .auth import admit, bearer_claims, current_identity
from .parsing import body_bytes, flag, predict_media_types
from .services import services

bp = Blueprint("predict", __name__, url_prefix="/resource")

#: The answer's header naming the request's columns the model does not take (ignored).
IGNORED_HEADER = "X-Ignored-Columns"
#: ``?extra_columns=``: what becomes of columns the model does not take.
EXTRA_COLUMNS = ("ignore", "refuse")
#: At most this many bytes of names go in the header (NGINX buffers an answer's headers
#: in 4 KiB); the rest are counted.
IGNORED_HEADER_BYTES = 2000


def extra_columns() -> inputs.ExtraColumns:
    """``?extra_columns=ignore`` (the default: ignored, named in the answer) or ``refuse``
    (400 naming them); 400 for anything else."""
    value = request.args.get("extra_columns", "ignore").strip().lower() or "ignore"
    if value not in EXTRA_COLUMNS:
        raise BadRequest(f"query parameter 'extra_columns' must be ignore or refuse, not {value!r}")
    return inputs.ExtraColumns(refuse=value == "refuse")


def ignored_header(names: list[str]) -> str:
    """The ``X-Ignored-Columns`` value: the names comma-separated, each percent-encoded as
    UTF-8 (so a comma or any character fits a header), then ``+N more`` past
    :data:`IGNORED_HEADER_BYTES`."""
    parts: list[str] = []
    size = 0
    for name in names:
        part = quote(name, safe=" ")
        if parts and size + len(part) + 1 > IGNORED_HEADER_BYTES:
            parts.append(f"+{len(names) - len(parts)} more")
            break
        parts.append(part)
        size += len(part) + 1
    return ",".join(parts)


class PredictTarget(Protocol):
    """What a route predicting with something else than a model id serves (a registered
    name's alias or version, :mod:`mlservice.api.registry`): it admits the caller and
    picks the model, then adds to the answer (headers) and sees the request's columns."""

    def admit(self, ctx: ServiceContext, claimed: Identity) -> tuple[int, Predictor]:
        """The token's user admitted, the model's published version and predictor."""

    def answered(self, response: Response, columns: dict[str, np.ndarray], raw: np.ndarray) -> None:
        """The answer is built (``raw``: the model's output for ``columns``)."""


class PredictProtocol(Protocol):
    """A protocol other than the native formats, on the same path (the Open Inference
    Protocol, :mod:`mlservice.api.v2`): it reads the request into the model's columns and
    writes the answer from the model's raw output."""

    def read(
        self, predictor: Predictor, limits: LimitsSettings
    ) -> tuple[dict[str, np.ndarray], bool]:
        """The model's input columns from the request, and whether probabilities are wanted."""

    def answer(self, predictor: Predictor, raw: np.ndarray, proba: np.ndarray | None) -> Response:
        """The answer to the model's raw output."""


def predict_with(
    model_id: str,
    user_model: bool,
    target: PredictTarget | None = None,
    protocol: PredictProtocol | None = None,
) -> Response:
    """Authenticate, validate the body, predict with the cached model, answer as asked.

    The body may be JSON, CSV, Parquet or Arrow and the answer JSON, CSV,
    Parquet or Arrow (``Accept``): :mod:`~mlservice.serving.formats`.

    ``user_model``: a model from ``/resource/models`` (its record says who may
    use it and whether it is ready), not the service's default model. ``target``:
    instead of ``model_id``, what picks the model (a prediction by registered name).
    ``protocol``: instead of those formats, what reads the body and writes the answer.
    """
    claimed = bearer_claims()
    ctx = services()
    extras: inputs.ExtraColumns | None = None
    if target is None:
        version, predictor = admitted_model(ctx, claimed, model_id, user_model)
    else:
        version, predictor = target.admit(ctx, claimed)
    if protocol is None:
        probabilities = flag("probabilities")
        media_type, answer_type = predict_media_types()  # 415, 406
        data = body_bytes(formats.format_name(media_type))  # 413
        extras = extra_columns()
        columns = formats.read_body(
            data, media_type, predictor.bundle.schema, ctx.settings.limits, extras
        )
    else:
        columns, probabilities = protocol.read(predictor, ctx.settings.limits)
    raw, proba = predictor.run(columns, probabilities=probabilities)
    g.prediction_rows = len(raw)  # for the metrics (api/monitoring.py)
    if (watched := g.pop("watched_model", None)) is not None:  # handed over, written later
        model, logged = watched
        ctx.recorder.record(
            predictor.bundle, model, version, columns, raw, proba, logs.request_id(), logged
        )
    if protocol is None:
        answer, content_type = formats.write_answer(predictor.bundle, raw, proba, answer_type)
        response = Response(answer, content_type=content_type)
    else:
        response = protocol.answer(predictor, raw, proba)
    response.headers["X-Model-Version"] = str(version)
    response.headers["X-Model-Engine"] = predictor.engine
    response.headers["X-Served-By"] = served_by()
    if extras is not None and extras.ignored:
        response.headers[IGNORED_HEADER] = ignored_header(extras.ignored)
    if target is not None:
        target.answered(response, columns, raw)
    return response


def admitted_model(
    ctx: ServiceContext, claimed: Identity, model_id: str, user_model: bool
) -> tuple[int, Predictor]:
    """Admit the token's user to the model and give its predictor; 401/404/409/424 if not."""
    reads = ctx.hot.read(claimed.username, model_id, user_model)
    admit(claimed, user_records.parse_access(reads.access))
    if user_model:
        # 404 for a model the caller may not see, 409 for one not ready.
        record = ctx.models.catalog.parse_shared(reads.record, model_id, current_identity())
        check_ready(model_id, record)
        # Its prediction log (or drift sample): docs/monitoring.md.
        g.watched_model = (model_id, bool(record.get("log_predictions", False)))
    try:
        return ctx.cache.get(model_id, published.parse_version(reads.version))
    except ModelNotPublished:
        if user_model:
            raise NotFound(f"model {model_id!r} was deleted") from None
        raise NotInitialised(
            "the service is not initialised: call GET /resource/init first"
        ) from None


def check_ready(model_id: str, record: ModelRecord) -> None:
    """409 for a model still queued, training or failed."""
    if record["status"] != ModelStatus.READY:
        raise Conflict(f"model {model_id!r} is {record['status']}, not ready")


@bp.post("/predict")
def predict() -> Response:
    """Records (JSON, CSV, Parquet, Arrow) → ``{"predictions": [...]}`` or the format asked."""
    return predict_with(published.DEFAULT_MODEL_ID, user_model=False)
