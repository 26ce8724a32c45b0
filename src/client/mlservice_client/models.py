"""Opening a downloaded model bundle without the service: ``load_model(path)``.

    from mlservice_client import load_model
    model = load_model("model.mlbundle", sha256=record["bundle_sha256"])
    model.predict(frame)          # class labels, or values
    model.predict_proba(frame)    # classifiers: one column per class, in model.classes order
    model.predict_frame(frame, probabilities=True)   # prediction, probability_<class>

Needs scikit-learn, joblib, pandas and numpy (``pip install
'mlservice-client[models]'``), xgboost or lightgbm for models of those, and
onnxruntime to answer exactly as the service does for compiled models; never
the server package.

Trust: a bundle is a pickle, and unpickling runs code. The service signs its
bundles with an HMAC under its own secret and never unpickles one that does
not verify; a client does not have that secret, so opening a file is the
user's trust decision, as with any pickle. To make that decision on firmer
ground, pass the ``sha256`` the model's record gives (``bundle_sha256``): the
file is refused unless it is byte for byte the one the service stored. An
operator holding the service secret can pass ``secret`` to check the HMAC
itself. Either check runs before anything is unpickled.

The bundle's own class (``ModelBundle``, in the server package) is read as a
plain :class:`Bundle` here; any other class from the server package is
refused, so nothing of it is ever imported.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import pickle
from pathlib import Path
from typing import Any

MAGIC = b"MLSBNDL1"
_SIGNATURE_LENGTH = 32
#: The server's module paths of the bundle class (the second from older bundles).
_BUNDLE_CLASSES = {("mlservice.store.bundles", "ModelBundle"), ("mlservice.bundles", "ModelBundle")}
#: Server modules whose pipeline steps this package carries (a bundle naming them opens
#: with the client's copy): the server's own is used where it pickled them.
_PORTABLE_MODULES = {"mlservice.table_features": "mlservice_client.table_features"}
#: What stands for a missing text value in a compiled model's string inputs.
MISSING_TEXT = "\x00"
#: Probabilities this close to the top one make a near tie, decided by scikit-learn.
TIE_MARGIN = 1e-5
#: Columns of :meth:`LoadedModel.predict_frame`: the prediction, then one per class.
PREDICTION = "prediction"
PROBABILITY_PREFIX = "probability_"


class BundleRejected(ValueError):
    """The file is not a bundle, or fails the hash or signature check asked for."""


class Bundle:
    """The contents of a model bundle, as the service wrote them (attributes only)."""

    pipeline: Any
    task: str
    estimator: str
    params: dict[str, Any]
    schema: list[dict[str, Any]]
    target: str
    classes: list[Any] | None
    metrics: dict[str, Any]
    versions: dict[str, str]
    onnx: bytes | None
    engine: str


def load_model(
    path: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    secret: str | None = None,
    engine: str = "auto",
) -> LoadedModel:
    """The model in a bundle downloaded from the service, ready to predict.

    ``sha256``: the hex digest the file must have (the record's ``bundle_sha256``).
    ``secret``: the service secret, to check the bundle's HMAC signature.
    ``engine``: ``auto`` (the engine the service uses: ONNX Runtime for a compiled
    model when onnxruntime is installed, else scikit-learn), ``onnxruntime`` or
    ``scikit-learn``.
    """
    data = Path(path).read_bytes()
    header = len(MAGIC) + _SIGNATURE_LENGTH
    if len(data) <= header or not data.startswith(MAGIC):
        raise BundleRejected(f"{path} is not a model bundle written by the ML Service")
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256.lower():
        raise BundleRejected(f"{path} does not have the sha256 {sha256}: not the stored bundle")
    payload = data[header:]
    if secret is not None:
        expected = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, data[len(MAGIC) : header]):
            raise BundleRejected(f"{path}: the signature does not verify under that secret")
    return LoadedModel(_unpickle(payload), engine)


def _unpickle(payload: bytes) -> Bundle:
    """The bundle object in a joblib pickle, its class read as :class:`Bundle`."""
    from joblib.numpy_pickle import NumpyUnpickler

    class Unpickler(NumpyUnpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) in _BUNDLE_CLASSES:
                return Bundle
            if module in _PORTABLE_MODULES:
                return _portable_class(module, name)
            if module == "mlservice" or module.startswith("mlservice."):
                raise pickle.UnpicklingError(
                    f"the bundle refers to {module}.{name} of the server package; "
                    "this client reads only bundles of scikit-learn (and XGBoost, LightGBM) models"
                )
            return super().find_class(module, name)

    bundle = Unpickler("", io.BytesIO(payload), True).load()
    if not isinstance(bundle, Bundle):
        raise BundleRejected("the file does not hold a model bundle")
    return bundle


def _portable_class(module: str, name: str) -> Any:
    """A pipeline step the server pickled from ``module``, from this package's copy."""
    import importlib

    try:
        return getattr(importlib.import_module(_PORTABLE_MODULES[module]), name)
    except (ImportError, AttributeError):
        raise pickle.UnpicklingError(
            f"the bundle's pipeline uses {module}.{name}, which this version of the client "
            "does not carry; upgrade mlservice-client"
        ) from None


class LoadedModel:
    """A model from a bundle: ``predict``, ``predict_proba`` (classifiers) on a DataFrame."""

    def __init__(self, bundle: Bundle, engine: str = "auto") -> None:
        if engine not in ("auto", "onnxruntime", "scikit-learn"):
            raise ValueError("engine must be auto, onnxruntime or scikit-learn")
        self.bundle = bundle
        self.pipeline = bundle.pipeline
        self.task: str = bundle.task
        self.estimator: str = bundle.estimator
        self.target: str = bundle.target
        self.classes: list[Any] | None = bundle.classes
        self.schema: list[dict[str, Any]] = bundle.schema
        self.metrics: dict[str, Any] = bundle.metrics
        self.versions: dict[str, str] = bundle.versions
        self._session: Any = None
        compiled = getattr(bundle, "onnx", None) is not None and bundle.engine == "onnxruntime"
        if engine == "onnxruntime" and not compiled:
            raise ValueError("this model has no ONNX graph the service serves it by")
        if compiled and engine != "scikit-learn":
            try:
                import onnxruntime
            except ImportError:
                if engine == "onnxruntime":
                    raise
            else:
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = 1  # as the service: the same sums in the same order
                options.inter_op_num_threads = 1
                self._session = onnxruntime.InferenceSession(
                    bundle.onnx, options, providers=["CPUExecutionProvider"]
                )
        #: Which engine answers: ``onnxruntime`` or ``scikit-learn``.
        self.engine = "onnxruntime" if self._session is not None else "scikit-learn"

    @property
    def is_classifier(self) -> bool:
        return self.task == "classification"

    def model_input(self, frame: Any) -> Any:
        """``frame``'s model columns in schema order, typed as the service types them
        (numbers as float64, text as Python strings, dates as their raw values, missing
        as NaN); extra columns are ignored. KeyError naming the missing ones."""
        import numpy as np
        import pandas as pd

        missing = [column["name"] for column in self.schema if column["name"] not in frame]
        if missing:
            raise KeyError(f"missing columns: {', '.join(missing)}")
        columns = {}
        for column in self.schema:
            values = frame[column["name"]]
            if column["type"] == "number":
                columns[column["name"]] = pd.to_numeric(values).astype("float64")
            elif column["type"] == "datetime":  # parsed by the pipeline's own date step
                raw = values.astype(object)
                columns[column["name"]] = raw.where(raw.notna(), np.nan).astype(object)
            else:
                text = values.astype(object)
                columns[column["name"]] = text.where(text.isna(), text.astype(str)).astype(object)
        return pd.DataFrame(columns, index=frame.index)

    def _raw(self, frame: Any, probabilities: bool) -> tuple[Any, Any]:
        """Class indices (or values) and, if asked, probabilities: as the service's engine."""
        import numpy as np

        x = self.model_input(frame)
        over = getattr(self.bundle, "onnx_max_rows", None)
        if self._session is None or (over is not None and len(x) > over):
            raw = self.pipeline.predict(x)
            proba = self.pipeline.predict_proba(x) if probabilities else None
            return np.asarray(raw), proba
        names = [output.name for output in self._session.get_outputs()]
        outputs = dict(zip(names, self._session.run(None, self._feed(x)), strict=True))
        first = outputs[names[0]]
        if not self.is_classifier:
            return first.reshape(-1).astype(np.float64), None
        labels, proba = first.reshape(-1), outputs.get("probabilities")
        if proba is not None and proba.shape[1] >= 2:
            top_two = np.sort(proba, axis=1)[:, -2:]
            ties = np.flatnonzero(top_two[:, 1] - top_two[:, 0] <= TIE_MARGIN)
            if ties.size:
                labels = labels.copy()
                labels[ties] = self.pipeline.predict(x.iloc[ties])
        return labels, proba if probabilities else None

    def _feed(self, x: Any) -> dict[str, Any]:
        """ONNX inputs as the service makes them: numbers imputed and scaled in float64
        then cast to float32, text with missing values marked."""
        import numpy as np

        session_inputs = [entry.name for entry in self._session.get_inputs()]
        names = dict(zip([column["name"] for column in self.schema], session_inputs, strict=True))
        preprocess = self.pipeline.named_steps["preprocess"]
        numeric: list[str] = []
        for name, _, columns in preprocess.transformers_:
            if name == "numeric":
                numeric = list(columns)
        feed: dict[str, Any] = {}
        if numeric:
            branch = preprocess.named_transformers_["numeric"]
            imputer, scaler = branch.named_steps["impute"], branch.named_steps["scale"]
            values = np.array([x[name].to_numpy() for name in numeric], dtype=np.float64)
            medians = np.asarray(imputer.statistics_, dtype=np.float64)
            values = np.where(np.isnan(values), medians[:, None], values)
            if scaler.with_mean:
                values -= scaler.mean_[:, None]
            if scaler.with_std:
                values /= scaler.scale_[:, None]
            prepared = values.astype(np.float32)
            for index, name in enumerate(numeric):
                feed[names[name]] = prepared[index].reshape(-1, 1)
        for column in self.schema:
            if column["type"] != "number":
                text = [v if isinstance(v, str) else MISSING_TEXT for v in x[column["name"]]]
                feed[names[column["name"]]] = np.array(text, dtype=object).reshape(-1, 1)
        return feed

    def predict(self, frame: Any) -> Any:
        """The class labels (or values) for each row of ``frame``, as a numpy array."""
        import numpy as np

        raw, _ = self._raw(frame, probabilities=False)
        if not self.is_classifier:
            return np.asarray(raw, dtype=np.float64)
        classes = np.empty(len(self.classes or []), dtype=object)
        classes[:] = list(self.classes or [])
        return classes[np.asarray(raw).astype(int)]

    def predict_proba(self, frame: Any) -> Any:
        """Each row's probability of each class (columns in :attr:`classes` order)."""
        import numpy as np

        if not self.is_classifier or not hasattr(self.pipeline, "predict_proba"):
            raise AttributeError(f"{self.estimator} gives no probabilities")
        _, proba = self._raw(frame, probabilities=True)
        return np.asarray(proba, dtype=np.float64)

    def predict_frame(self, frame: Any, probabilities: bool = False) -> Any:
        """A DataFrame as the service's tabular answers: ``prediction``, then (asked
        for) ``probability_<class>`` per class."""
        import pandas as pd

        result = pd.DataFrame({PREDICTION: self.predict(frame)}, index=frame.index)
        if probabilities:
            proba = self.predict_proba(frame)
            for index, label in enumerate(self.classes or []):
                result[f"{PROBABILITY_PREFIX}{label}"] = proba[:, index]
        return result
