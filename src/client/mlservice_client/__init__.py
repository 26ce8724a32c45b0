"""A Python client for the ML Service, and the ``mls`` command built on it.

    from mlservice_client import Client
    client = Client("http://127.0.0.1:8880", username="alice", password="...")
    data = client.upload_dataset("customers.csv")
    model = client.train(data["id"], "plan", "RandomForestClassifier", wait=True)
    client.predict("new-customers.csv", model=model["id"])

It depends on requests, tqdm and click only; pandas and pyarrow are needed
only for DataFrames and Parquet files, and scikit-learn and joblib (the
``models`` extra) to open a downloaded model with ``load_model``.
"""

__version__ = "0.1.0"

from .client import DEFAULT_MODEL, Client  # noqa: E402
from .errors import (  # noqa: E402
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Invalid,
    MLServiceError,
    NotFound,
    NotInitialised,
    ProfilingFailed,
    SearchFailed,
    ServiceError,
    TooLarge,
    TrainingFailed,
    Unauthorized,
    Unavailable,
    UnsupportedMedia,
    WaitTimeout,
)
from .models import Bundle, BundleRejected, LoadedModel, load_model  # noqa: E402

__all__ = [
    "DEFAULT_MODEL",
    "BadRequest",
    "Bundle",
    "BundleRejected",
    "LoadedModel",
    "load_model",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "Invalid",
    "MLServiceError",
    "NotFound",
    "NotInitialised",
    "ProfilingFailed",
    "SearchFailed",
    "ServiceError",
    "TooLarge",
    "TrainingFailed",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMedia",
    "WaitTimeout",
    "__version__",
]
