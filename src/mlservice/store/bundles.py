"""Model bundles: one signed file holding everything a prediction needs.

A bundle is the fitted pipeline (imputation, encoders, scaler, estimator), the
target's label encoding, the input schema, the metrics, the library versions
and, when the pipeline was compiled, its ONNX graph, pickled with joblib. The
pickle is preceded by an HMAC-SHA256 of it under the service secret;
:func:`loads` checks that signature *before* unpickling, because unpickling
untrusted bytes runs arbitrary code.

The bundle is the contract between training and serving, so the names both
sides share are declared here: :class:`Task`, :class:`Engine`, the pipeline's
:class:`Step` names and the input schema's :class:`SchemaColumn`.

File layout: ``MAGIC`` (8 bytes), the 32-byte HMAC, then the joblib pickle.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import io
import platform
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, Any, NotRequired, TypedDict

import joblib

from ..errors import TooLarge

MAGIC = b"MLSBNDL1"
_SIG_LEN = hashlib.sha256().digest_size
_HEADER_LEN = len(MAGIC) + _SIG_LEN
#: How much of a bundle file its signature check holds in memory at a time.
CHUNK_SIZE = 1024 * 1024

# Bundles written before the package had sub-packages name their class
# ``mlservice.bundles.ModelBundle``: that path resolves to this module, so
# bundles users downloaded then still load.
sys.modules.setdefault("mlservice.bundles", sys.modules[__name__])


class Task(StrEnum):
    """What a model predicts: a class, or a number."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"


class Engine(StrEnum):
    """What runs a model's predictions."""

    ONNXRUNTIME = "onnxruntime"
    SCIKIT_LEARN = "scikit-learn"


class Step(StrEnum):
    """Names of the fitted pipeline's steps, which serving and ONNX conversion look up."""

    PREPROCESS = "preprocess"  # the ColumnTransformer
    ESTIMATOR = "estimator"
    NUMERIC = "numeric"  # ColumnTransformer branch: impute, scale
    CATEGORICAL = "categorical"  # ColumnTransformer branch: impute, encode
    IMPUTE = "impute"
    SCALE = "scale"
    ENCODE = "encode"
    DATETIME = "datetime"  # ColumnTransformer branch: date features, impute, scale
    DATE_FEATURES = "date_features"
    TEXT = "text"  # ColumnTransformer branches "text:<column>": text column, TF-IDF
    TEXT_COLUMN = "text_column"
    TFIDF = "tfidf"


class ColumnType(StrEnum):
    """How an input column is fed to the model: numbers, text (one-hot encoded categories or
    TF-IDF free text), or dates (text, date or timestamp values, or integer years)."""

    NUMBER = "number"
    STRING = "string"
    DATETIME = "datetime"


class SchemaColumn(TypedDict):
    """One input column of a model, as its input schema lists it."""

    name: str
    type: str  # a ColumnType
    categories: NotRequired[list[str]]  # text columns: the values seen in training
    #: The column's role in the model (mlservice.store.column_roles: numeric, categorical,
    #: datetime, text); models from before roles: absent (by type).
    role: NotRequired[str]
    #: Date columns: the strftime format training's values were written in, tried first.
    format: NotRequired[str | None]
    #: Categorical columns with many values: at most this many encoded, the rarest grouped.
    max_categories: NotRequired[int]


class TrainingWarning(TypedDict):
    """Something training warns the user of: a column left out, rows dropped, an estimator's
    own warning. ``kind`` is a short name (``column_left_out``, ``rows_dropped``,
    ``categories_grouped``, ``class_imbalance``, ``not_numbers``, or a Python warning's
    class, e.g. ``ConvergenceWarning``); ``message`` a sentence."""

    kind: str
    message: str
    column: NotRequired[str]


class OnnxInput(TypedDict):
    """One input of a model's downloadable ONNX graph: the column it takes, the graph's
    name for it (skl2onnx renames what is not an identifier) and its element type."""

    column: str
    input: str
    type: str  # double (numeric columns) or string


class EngineInfo(TypedDict):
    """Which engine serves a model, and why (shown in the model's record)."""

    name: str
    reason: str
    #: Compiled models: the inputs of the graph ``?format=onnx`` downloads, in column order.
    onnx_inputs: NotRequired[list[OnnxInput]]


class BundleError(Exception):
    """Bytes that are not a bundle this service signed (the upload route answers 400;
    a stored bundle failing its check is the service's fault, a 500)."""


@dataclass
class ModelBundle:
    """A trained model and what it needs to predict and to be explained."""

    pipeline: Any
    task: str  # a Task
    estimator: str
    params: dict[str, Any]
    schema: list[SchemaColumn]
    target: str
    classes: list[Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    trained_at: float | None = None
    training_seconds: float | None = None
    #: The ONNX graph of the pipeline, when it compiled and passed the held-out check.
    onnx: bytes | None = None
    #: Which engine serves the bundle (an Engine) and why.
    engine: str = Engine.SCIKIT_LEARN.value
    engine_reason: str = "not compiled"
    #: Requests over this many rows go to scikit-learn even when compiled (None: no limit).
    onnx_max_rows: int | None = None
    #: What training warned of (columns left out, rows dropped, estimator warnings).
    warnings: list[TrainingWarning] = field(default_factory=list)
    #: The training split's inputs, column by column (``monitoring.feature_profile``), which
    #: drift compares recent inputs with; None for bundles trained before it was kept.
    training_profile: dict[str, Any] | None = None

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled: a bundle written before a field was added gets its default."""
        state.setdefault("warnings", [])
        state.setdefault("training_profile", None)
        self.__dict__.update(state)

    def __post_init__(self) -> None:
        # Plain strings in the pickle: a bundle must not depend on this module's enums.
        self.task = str(Task(self.task).value)
        self.engine = str(Engine(self.engine).value)

    def describe(self) -> dict[str, Any]:
        """The bundle's metadata as JSON (no pipeline)."""
        return {
            "task": self.task,
            "estimator": self.estimator,
            "params": self.params,
            "target": self.target,
            "classes": self.classes,
            "input_schema": self.schema,
            "metrics": self.metrics,
            "versions": self.versions,
            "trained_at": self.trained_at,
            "training_seconds": self.training_seconds,
            "engine": self.engine_info(),
            "warnings": self.warnings,
        }

    def engine_info(self) -> EngineInfo:
        """The engine and its reason, as a model record shows them (and the ONNX graph's
        inputs, when it has one)."""
        info: EngineInfo = {"name": self.engine, "reason": self.engine_reason}
        if self.onnx is not None and self.engine == Engine.ONNXRUNTIME:
            info["onnx_inputs"] = self.onnx_inputs()
        return info

    def onnx_inputs(self) -> list[OnnxInput]:
        """Each schema column with the ONNX graph input that takes it (ValueError: no graph).

        Numeric inputs are double: the downloadable graph imputes and scales them itself
        (:mod:`mlservice.serving.onnx_export`).
        """
        import onnx

        if self.onnx is None:
            raise ValueError("the model has no ONNX graph")
        graph = onnx.load_from_string(self.onnx).graph
        initializers = {tensor.name for tensor in graph.initializer}
        names = [entry.name for entry in graph.input if entry.name not in initializers]
        return [
            {
                "column": column["name"],
                "input": name,
                "type": "double" if column["type"] == ColumnType.NUMBER else "string",
            }
            for column, name in zip(self.schema, names, strict=True)
        ]


def library_versions(extra: Iterable[str] = ()) -> dict[str, str]:
    """The versions a bundle needs to be loaded elsewhere (``extra``: more packages)."""
    import numpy
    import onnxruntime
    import pandas
    import skl2onnx
    import sklearn

    versions = {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "joblib": joblib.__version__,
        "skl2onnx": skl2onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
    # The estimator's library beyond scikit-learn (xgboost, lightgbm): loading the
    # bundle elsewhere needs it too.
    for name in extra:
        module = importlib.import_module(name)
        versions[name] = str(getattr(module, "__version__", "unknown"))
    return versions


def _signature(payload: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode(), payload, hashlib.sha256).digest()


def dumps(bundle: ModelBundle, secret: str) -> bytes:
    """Serialise and sign a bundle."""
    buffer = io.BytesIO()
    joblib.dump(bundle, buffer)
    payload = buffer.getvalue()
    return MAGIC + _signature(payload, secret) + payload


def loads(data: bytes, secret: str) -> ModelBundle:
    """Verify the signature, then (and only then) deserialise."""
    header_len = len(MAGIC) + _SIG_LEN
    if len(data) <= header_len or not data.startswith(MAGIC):
        raise BundleError("not a model bundle written by this service")
    signature, payload = data[len(MAGIC) : header_len], data[header_len:]
    if not hmac.compare_digest(signature, _signature(payload, secret)):
        raise BundleError("model bundle signature does not verify (tampered or foreign bundle)")
    bundle = joblib.load(io.BytesIO(payload))
    if not isinstance(bundle, ModelBundle):
        raise BundleError("signed file does not hold a model bundle")
    return bundle


def verify_stream(source: IO[bytes], secret: str, limit: int | None = None) -> None:
    """Check the signature of a bundle file (seekable) a chunk at a time; :class:`BundleError`
    if it fails, :class:`TooLarge` as soon as it passes ``limit`` bytes.

    Nothing of the file is kept: memory stays at one chunk whatever its size.
    What verifies is signed by this service, so reading it whole afterwards
    (:func:`loads`, which checks the bytes it unpickles again) is safe.
    """
    source.seek(0)
    header = source.read(_HEADER_LEN)
    if len(header) < _HEADER_LEN or not header.startswith(MAGIC):
        raise BundleError("not a model bundle written by this service")
    signature = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    size = len(header)
    while chunk := source.read(CHUNK_SIZE):
        size += len(chunk)
        if limit is not None and size > limit:
            raise TooLarge(f"the bundle is larger than {limit} bytes")
        signature.update(chunk)
    if size == _HEADER_LEN:
        raise BundleError("not a model bundle written by this service")
    if not hmac.compare_digest(header[len(MAGIC) :], signature.digest()):
        raise BundleError("model bundle signature does not verify (tampered or foreign bundle)")
