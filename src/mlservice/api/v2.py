"""``/v2``: the Open Inference Protocol (V2) of KServe, Triton and MLServer, over REST.

So that their clients (``tritonclient.http``, the ``kserve`` SDK, Triton's
``perf_analyzer``) work unchanged: health, server and model metadata, model
readiness and inference, as ``inference_rest.md`` of
kserve/open-inference-protocol says. What the protocol's tensors mean for a
model of named columns is :mod:`mlservice.serving.v2_protocol`'s.

A model's ``{name}`` is a registered model's name (its ``production`` alias,
else its latest version; ``versions/{v}`` is the registry's version number),
else a model id (``versions/{v}``: its published version), or ``default``
for the service's default model. Inference goes through the same path as
every prediction (:func:`~mlservice.api.predict.predict_with`): the name is
resolved from the worker's remembered reads (no Redis round trip in the
common case), the model comes from the worker's cache and
:meth:`~mlservice.serving.predictor.Predictor.run` answers; only the reading
of the body and the writing of the answer are the protocol's
(:class:`Inference`). Errors are ``{"error": "..."}``, as the protocol says
(:mod:`.error_handler` decides by the path).

Bearer tokens as everywhere: the model routes need one (``tritonclient``'s
``headers={"Authorization": "Bearer ..."}``); the health and server metadata
routes, like ``/healthz``, do not.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import redis
from flask import Blueprint, Response, g, jsonify, request

from ..bodies import HEX_ID
from ..config import LimitsSettings
from ..context import ServiceContext
from ..errors import BadRequest, NotFound, Unavailable, UnsupportedMedia
from ..process import service_version
from ..redis_client import text
from ..registry import routing
from ..registry.registered_models import may_see
from ..registry.registry_records import RECORD, versions_key
from ..security import Identity
from ..serving import formats, inputs, v2_protocol
from ..serving.hot_reads import access_read
from ..serving.predictor import Predictor
from ..store import published, user_records
from ..store.bundles import Engine
from .auth import admit, bearer_claims, current_identity
from .health import readiness_redis
from .parsing import body_bytes
from .predict import admitted_model, predict_with
from .registry import NamedTarget
from .services import services

bp = Blueprint("v2", __name__, url_prefix="/v2")

#: The alias a registered model answers by, when it has it.
PRODUCTION = "production"
#: What the server metadata calls this server.
SERVER_NAME = "mlservice"
#: The binary tensor data extension's header: the length of the JSON at the body's start.
HEADER_LENGTH = "Inference-Header-Content-Length"
OCTET_STREAM = "application/octet-stream"
#: The ``platform`` of a model's metadata, by the engine serving it ("<project>_<format>").
PLATFORMS = {Engine.ONNXRUNTIME.value: "onnx_onnxv1", Engine.SCIKIT_LEARN.value: "sklearn_joblib"}

_MODEL_ID = re.compile(HEX_ID)


class V2Model:
    """The model a V2 path names (a :class:`~mlservice.api.predict.PredictTarget`): a
    registered name, a model id or ``default``, maybe with a version."""

    def __init__(self, name: str, version: int | None = None) -> None:
        self.name, self.version = name, version
        #: The version V2 answers with: the registry's for a name, else the published one.
        self.model_version = 0
        #: The model answering, and the registered name's target when it is one.
        self.model_id = name
        self.named: NamedTarget | None = None

    def admit(self, ctx: ServiceContext, claimed: Identity) -> tuple[int, Predictor]:
        """The token's user admitted and the model picked, from the worker's remembered reads;
        404 for a name, id or version the caller cannot use."""
        if self.name == published.DEFAULT_MODEL_ID:
            g.prediction_kind = "default"  # for the metrics (api/monitoring.py)
            return self._by_id(ctx, claimed, user_model=False)
        wanted = [access_read(claimed.username), routing.record_read(self.name)]
        if self.version is None:
            wanted.append(routing.alias_read(self.name, PRODUCTION))
        values = ctx.hot.values(wanted)
        admit(claimed, user_records.parse_access(values[0]))
        record = RECORD.decode(values[1]) if values[1] is not None else None
        if record is not None and may_see(current_identity(), record):
            if self.version is not None:
                self.named = NamedTarget(self.name, version=self.version)
            elif values[2] is not None:
                self.named = NamedTarget(self.name, alias=PRODUCTION)
            elif record["latest_version"] is not None:
                self.named = NamedTarget(self.name, version=record["latest_version"])
            else:
                raise NotFound(
                    f"registered model {self.name!r} has no version yet; add one with "
                    f"POST /resource/registry/{self.name}/versions"
                )
            published_version, predictor = self.named.admit(ctx, claimed)
            assert self.named.route is not None
            self.model_version, self.model_id = self.named.route.version, self.named.route.model_id
            return published_version, predictor
        if _MODEL_ID.fullmatch(self.name):
            return self._by_id(ctx, claimed, user_model=True)
        raise NotFound(f"no model {self.name!r}: name a registered model, a model id, or 'default'")

    def _by_id(
        self, ctx: ServiceContext, claimed: Identity, user_model: bool
    ) -> tuple[int, Predictor]:
        """A model by id (or the default model): ``versions/{v}`` must be its published one."""
        published_version, predictor = admitted_model(ctx, claimed, self.name, user_model)
        if self.version is not None and self.version != published_version:
            raise NotFound(
                f"model {self.name!r} is at version {published_version}, not {self.version}: "
                f"ask /v2/models/{self.name} (or .../versions/{published_version})"
            )
        self.model_version = published_version
        return published_version, predictor

    def answered(self, response: Response, columns: dict[str, np.ndarray], raw: Any) -> None:
        """A registered name's headers, metrics and shadow copy (:class:`NamedTarget`)."""
        if self.named is not None:
            self.named.answered(response, columns, raw)


class Inference:
    """The protocol's side of an inference (a :class:`~mlservice.api.predict.PredictProtocol`):
    the request's tensors as the model's columns, its output as the V2 answer."""

    def __init__(self, model: V2Model) -> None:
        self.model = model
        self.request_id: str | None = None
        self.wanted: list[v2_protocol.Output] = []

    def read(
        self, predictor: Predictor, limits: LimitsSettings
    ) -> tuple[dict[str, np.ndarray], bool]:
        """The columns and whether ``probabilities`` was asked for; 4xx naming the input."""
        header, binary = request_body()
        inference = v2_protocol.decode_request(header)
        schema = predictor.bundle.schema
        self.wanted = v2_protocol.requested_outputs(inference, predictor.bundle)
        self.request_id = inference.id
        columns = v2_protocol.model_input(inference, schema, binary)
        rows = len(next(iter(columns.values())))
        formats.check_decoded(rows * inputs.row_bytes(schema), limits, "inference request")
        wants = any(output.name == v2_protocol.PROBABILITIES for output in self.wanted)
        return columns, wants

    def answer(self, predictor: Predictor, raw: np.ndarray, proba: np.ndarray | None) -> Response:
        """``$inference_response``: JSON, or JSON then binary outputs."""
        body, header_length = v2_protocol.answer(
            self.model.name,
            str(self.model.model_version),
            self.request_id,
            self.wanted,
            predictor.bundle,
            raw,
            proba,
        )
        if header_length is None:
            return Response(body, content_type=formats.JSON)
        response = Response(body, content_type=OCTET_STREAM)
        response.headers[HEADER_LENGTH] = str(header_length)
        return response


def request_body() -> tuple[bytes, memoryview | None]:
    """The request's JSON, and the binary tensor data after it (binary extension), if any.

    Read whole first (bounded by ``[limits] max_json_mb``), so a refusal never
    leaves NGINX sending a body nobody reads.
    """
    data = body_bytes("inference request")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding != "identity":
        raise UnsupportedMedia(
            f"the request body is compressed ({encoding}), which is not read here; send it "
            "uncompressed (tritonclient: no request_compression_algorithm)"
        )
    if request.mimetype not in ("", formats.JSON, OCTET_STREAM):
        raise UnsupportedMedia(
            f"cannot read an inference request sent as {request.mimetype!r}; send JSON "
            f"(application/json), or JSON then binary tensor data ({OCTET_STREAM} with "
            f"{HEADER_LENGTH})"
        )
    if not data:
        example = v2_protocol.InferenceRequest.example
        raise BadRequest(f"the request body is empty; send an inference request: {example}")
    length = request.headers.get(HEADER_LENGTH)
    if length is None:
        return data, None
    length = length.strip()
    if not length.isdigit() or not 0 < int(length) <= len(data):
        raise BadRequest(
            f"{HEADER_LENGTH} must be the length in bytes of the JSON that starts the body, "
            f"from 1 to {len(data)}, not {length!r}"
        )
    size = int(length)
    return data[:size], memoryview(data)[size:]


# --- health and server metadata: no token, like /healthz ------------------------------------


@bp.get("")
@bp.get("/")
def server_metadata() -> Response:
    """``$metadata_server_response``: this server's name, version and extensions."""
    return jsonify(
        name=SERVER_NAME, version=service_version(), extensions=list(v2_protocol.EXTENSIONS)
    )


@bp.get("/health/live")
def live() -> Response:
    """The process answers: no dependency is consulted."""
    return jsonify(live=True)


@bp.get("/health/ready")
def ready() -> Response:
    """Ready for inference: Redis answers (within a second). No Celery worker is needed to
    predict, so none is asked (``/readyz`` asks)."""
    try:
        readiness_redis(services().settings.redis).ping()
    except redis.RedisError:
        raise Unavailable("not ready: the store (Redis) does not answer") from None
    # The protocol's $ready_server_response is written {"live": ...}; "ready" says it plainly.
    return jsonify(live=True, ready=True)


# --- models ---------------------------------------------------------------------------------


@bp.get("/models/<regname:name>")
@bp.get("/models/<regname:name>/versions/<version:version>")
def model_metadata(name: str, version: int | None = None) -> Response:
    """``$metadata_model_response``: an input per column (its datatype), ``label``, and for a
    classifier ``probabilities`` with the class order."""
    ctx = services()
    model = V2Model(name, version)
    published_version, predictor = model.admit(ctx, bearer_claims())
    viewer = current_identity()
    if model.named is not None:
        numbers = ctx.redis.zrange(versions_key(name), 0, -1)
        versions = [str(text(number)) for number in numbers]
    else:
        versions = [str(published_version)]
    return jsonify(
        v2_protocol.model_metadata(
            name,
            versions,
            PLATFORMS.get(predictor.engine, predictor.engine),
            predictor.bundle,
            profiled_types(ctx, model.model_id, viewer),
        )
    )


def profiled_types(ctx: ServiceContext, model_id: str, viewer: Identity) -> dict[str, str]:
    """Each column's dtype in the data set the model was trained on (``integer``...), when
    that data set is still there: the metadata then says ``INT64`` for integers."""
    if model_id == published.DEFAULT_MODEL_ID:
        return {}
    try:
        dataset_id = ctx.models.catalog.get(model_id, viewer).get("dataset_id")
        if not dataset_id:
            return {}
        dataset = ctx.datasets.catalog.get(dataset_id, viewer)
    except NotFound:
        return {}
    return {column["name"]: column["dtype"] for column in dataset.get("columns", [])}


@bp.get("/models/<regname:name>/ready")
@bp.get("/models/<regname:name>/versions/<version:version>/ready")
def model_ready(name: str, version: int | None = None) -> Response:
    """``$ready_model_response``: 200 when the model can answer; else the error that says why
    (404 unknown, 409 still training or failed, 424 the default model not yet trained)."""
    V2Model(name, version).admit(services(), bearer_claims())
    return jsonify(name=name, ready=True)


@bp.post("/models/<regname:name>/infer")
@bp.post("/models/<regname:name>/versions/<version:version>/infer")
def infer(name: str, version: int | None = None) -> Response:
    """``$inference_request`` → ``$inference_response``, on the path every prediction takes."""
    model = V2Model(name, version)
    return predict_with("", user_model=True, target=model, protocol=Inference(model))
