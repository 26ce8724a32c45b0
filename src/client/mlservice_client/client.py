"""The Python client: one typed method per route of ml-service.yml.

``Client(url, username=..., password=...)`` gets (and renews) its own
tokens; ``Client(url, token=...)`` uses the one it is given. Files go up and
come down as streams, long work is waited for with backoff (``wait=True``),
and every refusal is an exception from :mod:`.errors` with the service's
message. The client never imports the server package.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import unquote

import requests

from . import backoff, tables
from .errors import (
    NotFound,
    ProfilingFailed,
    SearchFailed,
    ServiceError,
    TrainingFailed,
    UnsupportedMedia,
)
from .models import LoadedModel, load_model
from .schemas import (
    FAILED,
    PROFILING,
    READY,
    Dataset,
    DatasetList,
    Estimator,
    HistoryEntry,
    Model,
    ModelAccepted,
    ModelList,
    Prediction,
    RegisteredModel,
    RegisteredModelList,
    RegisteredVersion,
    RegistryAlias,
    Report,
    Search,
    SearchAccepted,
    SearchList,
    TaskAccepted,
    TaskStatus,
    Token,
    User,
)
from .streaming import CHUNK, MultipartStream, Progress, ProgressReader, no_progress, save_stream
from .transport import Transport

#: ``model`` value naming the service's default model (``POST /resource/predict``).
DEFAULT_MODEL = "default"

#: Records per predict request when predicting a file (the service takes at most 100000).
BATCH_SIZE = 10_000

#: Media types of a raw data set upload, by extension; others go as octet-stream with a name.
DATASET_TYPES = {
    ".csv": "text/csv",
    ".parquet": "application/vnd.apache.parquet",
    ".pq": "application/vnd.apache.parquet",
}

#: Called with each task status while waiting (the CLI's progress bar).
OnStatus = Callable[[TaskStatus], None]

#: Called with each search record while waiting for it (the CLI's live leaderboard).
OnSearch = Callable[[Search], None]

#: A search's statuses once it has ended.
SEARCH_ENDED = ("done", "failed", "cancelled")

#: Called with each data set record while waiting for its profile.
OnDataset = Callable[[Dataset], None]

#: What ``predict`` takes: records, a DataFrame, or a file (path or binary stream).
PredictInput = dict[str, Any] | list[dict[str, Any]] | str | os.PathLike[str] | IO[bytes] | Any

#: werkzeug's message for a URL no route serves (as opposed to an unknown id on a real route).
_NO_ROUTE = "The requested URL was not found on the server"


class Client:
    """The ML Service over HTTP."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        *,
        retries: int = 3,
        timeout: float | None = None,
        session: requests.Session | None = None,
    ) -> None:
        """``token``, or ``username`` and ``password`` (then tokens are fetched and renewed).

        With both, ``token`` is used first and the credentials renew it.
        ``retries``: repeats of a request that is safe to repeat (connection
        errors, ``503`` with ``Retry-After``). ``timeout``: seconds to wait for
        an answer (default 310, above NGINX's own 300).
        """
        self._http = Transport(url, token, username, password, retries=retries, session=session)
        if timeout is not None:
            self._http.read_timeout = timeout

    @property
    def url(self) -> str:
        """The service's base URL."""
        return self._http.url

    @property
    def token(self) -> str | None:
        """The bearer token in use (``None`` until the first request with credentials)."""
        return self._http.token

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._http.send(method, path, **kwargs).json()

    def _no_content(self, method: str, path: str, **kwargs: Any) -> None:
        self._http.send(method, path, **kwargs).close()

    def _download(
        self, path: str, target: str | os.PathLike[str] | IO[bytes], progress: Progress
    ) -> int:
        """Stream ``path``'s body into ``target``; a file path is written whole or not at all."""
        response = self._http.send("GET", path, stream=True)
        with response:
            size = response.headers.get("Content-Length")
            total = int(size) if size and size.isdigit() else None
            chunks = response.iter_content(CHUNK)
            if not isinstance(target, (str, os.PathLike)):
                return save_stream(chunks, target, total, progress)
            final = Path(target)
            partial = final.with_name(final.name + ".part")
            try:
                with open(partial, "wb") as out:
                    written = save_stream(chunks, out, total, progress)
                partial.replace(final)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    partial.unlink()
            return written

    # -- auth and users ----------------------------------------------------------------------

    def login(self) -> Token:
        """Get a new token with the credentials (``GET /resource/auth``); it is used from now on."""
        return cast(Token, self._http.log_in())

    def users(self) -> list[User]:
        """Every account (admins)."""
        return cast(list[User], self._json("GET", "/resource/users")["users"])

    def user(self, username: str) -> User:
        """One account (admins); :class:`NotFound` if there is none of that name."""
        for user in self.users():
            if user["username"] == username:
                return user
        raise NotFound(f"user {username!r} does not exist", 404)

    def create_user(self, username: str, password: str, role: str = "user") -> User:
        """A new account (admins)."""
        body = {"username": username, "password": password, "role": role}
        return cast(User, self._json("POST", "/resource/users", json=body))

    def update_user(
        self,
        username: str,
        password: str | None = None,
        role: str | None = None,
        current_password: str | None = None,
        disabled: bool | None = None,
    ) -> User:
        """Change a password and/or role, or (admins) disable or enable the account
        (``disabled``); the account's earlier tokens stop working."""
        body = {
            key: value
            for key, value in (
                ("password", password),
                ("role", role),
                ("current_password", current_password),
                ("disabled", disabled),
            )
            if value is not None
        }
        return cast(User, self._json("PATCH", f"/resource/users/{username}", json=body))

    def delete_user(self, username: str) -> None:
        """Delete an account with its data sets and models (admins)."""
        self._no_content("DELETE", f"/resource/users/{username}")

    # -- service and tasks -------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /readyz``: whether the service can work (workers, Redis)."""
        return cast(dict[str, Any], self._json("GET", "/readyz", bearer=False))

    def init(
        self, wait: bool = True, timeout: float | None = 600, on_status: OnStatus | None = None
    ) -> TaskStatus:
        """Train the default model; with ``wait``, until it is published.

        :class:`TrainingFailed` if the init task fails.
        """
        accepted = cast(TaskAccepted, self._json("GET", "/resource/init", params={"async": "true"}))
        if not wait:
            return {"task_id": accepted["task_id"], "done": False, "state": "PENDING"}
        status = self.wait_task(accepted["task_id"], timeout, on_status)
        if status["state"] != "SUCCESS":
            raise TrainingFailed(f"init failed: {status.get('error', status['state'])}")
        return status

    def task(self, task_id: str) -> TaskStatus:
        """A task's state and progress (yours; admins: any)."""
        return cast(TaskStatus, self._json("GET", f"/resource/task/status/{task_id}"))

    def wait_task(
        self, task_id: str, timeout: float | None = None, on_status: OnStatus | None = None
    ) -> TaskStatus:
        """Poll the task with backoff until it is done; its last status.

        :class:`~mlservice_client.errors.WaitTimeout` after ``timeout`` seconds
        (the task goes on).
        """
        return backoff.poll(
            lambda: self.task(task_id),
            lambda status: bool(status["done"]),
            timeout,
            f"task {task_id}",
            on_status,
        )

    # -- predictions -------------------------------------------------------------------------

    def predict(
        self,
        data: PredictInput,
        model: str = DEFAULT_MODEL,
        probabilities: bool = False,
        file_format: str | None = None,
        batch_size: int = BATCH_SIZE,
        extra_columns: str | None = None,
    ) -> Prediction:
        """Predict records, a pandas DataFrame or a file (CSV, JSON, JSON Lines, Parquet).

        ``model``: a model id, ``"default"`` for the service's default
        model, or a registered model as ``"name@alias"`` (or ``"name@3"``,
        version 3). A file is read ``batch_size`` records per request and its CSV
        cells are typed by the model's input schema. Columns the model does not
        take are ignored by the service, or refused with ``extra_columns="refuse"``.
        """
        return cast(
            Prediction,
            tables.merge(
                self.iter_predict(
                    data, model, probabilities, file_format, batch_size, extra_columns
                )
            ),
        )

    def iter_predict(
        self,
        data: PredictInput,
        model: str = DEFAULT_MODEL,
        probabilities: bool = False,
        file_format: str | None = None,
        batch_size: int = BATCH_SIZE,
        extra_columns: str | None = None,
    ) -> Iterator[Prediction]:
        """Like :meth:`predict`, one answer per batch, so a large file's answers stream."""
        native = self._native(data, file_format)
        if native is not None:
            source, found = native
            sent = False
            try:
                for body in tables.native_batches(source, found, batch_size):
                    yield self._predict_body(
                        body, tables.NATIVE_TYPES[found], model, probabilities, extra_columns
                    )
                    sent = True
                return
            except UnsupportedMedia:
                if sent or not isinstance(source, Path):
                    raise
                # A service that reads only JSON bodies: the records go as JSON instead.
        for batch in self._batches(data, model, file_format, batch_size):
            yield self.predict_records(batch, model, probabilities, extra_columns)

    def _native(self, data: PredictInput, file_format: str | None) -> tuple[Any, str] | None:
        """A CSV or Parquet file and its format, to send as it is; ``None`` for anything else."""
        if isinstance(data, (str, os.PathLike)):
            found = tables.format_of(os.fspath(data), file_format)
            return (Path(data), found) if found in tables.NATIVE_TYPES else None
        if hasattr(data, "read") and file_format in tables.NATIVE_TYPES:
            return data, file_format
        return None

    def _predict_body(
        self,
        body: bytes,
        media_type: str,
        model: str,
        probabilities: bool,
        extra_columns: str | None = None,
    ) -> Prediction:
        """One predict request whose body is a file format the service reads (CSV, Parquet)."""
        params = _predict_params(probabilities, extra_columns)
        headers = {"Content-Type": media_type, "Accept": "application/json"}
        return _prediction(
            self._http.send("POST", _predict_path(model), data=body, headers=headers, params=params)
        )

    def predict_records(
        self,
        records: list[dict[str, Any]],
        model: str = DEFAULT_MODEL,
        probabilities: bool = False,
        extra_columns: str | None = None,
    ) -> Prediction:
        """One predict request of JSON records."""
        params = _predict_params(probabilities, extra_columns)
        return _prediction(
            self._http.send("POST", _predict_path(model), json=records, params=params)
        )

    def _batches(
        self, data: PredictInput, model: str, file_format: str | None, batch_size: int
    ) -> Iterator[list[dict[str, Any]]]:
        if isinstance(data, dict):
            yield [data]
        elif isinstance(data, list):
            yield from tables.chunked(data, batch_size)
        elif tables.is_dataframe(data):
            yield from tables.chunked(tables.frame_records(data), batch_size)
        elif isinstance(data, (str, os.PathLike)) or hasattr(data, "read"):
            source = Path(data) if isinstance(data, (str, os.PathLike)) else cast(IO[bytes], data)
            name = str(source) if isinstance(source, Path) else "the input stream"
            found = tables.format_of(name, file_format)
            kinds = self._column_kinds(model) if found == "csv" else None
            yield from tables.file_batches(source, found, kinds, batch_size)
        else:
            raise TypeError(
                "predict takes a record (dict), a list of records, a pandas DataFrame, "
                f"or a file path or binary stream, not {type(data).__name__}"
            )

    def _column_kinds(self, model: str) -> dict[str, str] | None:
        """The model's column types (``number``/``string``), to type CSV cells; ``None``: guess."""
        if model == DEFAULT_MODEL:
            return None
        model_id = self._registered_model_id(model) if "@" in model else model
        columns = self.model(model_id).get("input_schema", [])
        return {str(c["name"]): str(c["type"]) for c in columns}

    def _registered_model_id(self, target: str) -> str:
        """The model behind ``name@alias`` (a split's first version) or ``name@<version>``."""
        name, _, alias = target.partition("@")
        if alias.isdigit():
            version = int(alias)
        else:
            found = self.alias(name, alias)
            version = found["version"] or int(next(iter(found["versions"] or {"0": 0})))
        return self.registered_version(name, version)["model_id"]

    # -- data sets ---------------------------------------------------------------------------

    def upload_dataset(
        self,
        file: str | os.PathLike[str] | IO[bytes],
        name: str | None = None,
        progress: Progress = no_progress,
        *,
        wait: bool = True,
        timeout: float | None = None,
        on_status: OnDataset | None = None,
        delimiter: str | None = None,
        decimal: str | None = None,
    ) -> Dataset:
        """Upload a CSV or Parquet file, streamed from disk; its record and profile.

        ``delimiter`` (``,`` ``;`` ``|`` or ``tab``) and ``decimal`` (``.`` or ``,``)
        say how a CSV file is written; by default the service detects them.

        ``name`` defaults to the file's name; its extension (else the file's)
        tells the format. A file over the service's ``[service]
        inline_profile_mb`` is answered ``profiling`` while a worker reads it:
        with ``wait`` (the default) that is waited for as :meth:`wait_dataset`
        does, so the record comes back ``ready`` with its profile (or
        :class:`ProfilingFailed`); without it, at once and maybe ``profiling``.
        """
        with _opened(file) as stream:
            path = Path(file) if isinstance(file, (str, os.PathLike)) else None
            filename = name or (path.name if path else None)
            suffix = Path(filename or "").suffix.lower() or (path.suffix.lower() if path else "")
            headers = {"Content-Type": DATASET_TYPES.get(suffix, "application/octet-stream")}
            dialect = {"delimiter": delimiter, "decimal": decimal}
            params = {"name": filename} if filename else {}
            params |= {key: value for key, value in dialect.items() if value}
            body = ProgressReader(stream, progress)
            record = cast(
                Dataset,
                self._json(
                    "POST", "/resource/datasets", data=body, headers=headers, params=params or None
                ),
            )
        if not wait:
            return record
        if dataset_status(record) == PROFILING:
            return self.wait_dataset(record["id"], timeout, on_status)
        return _usable(record)

    def wait_dataset(
        self, dataset_id: str, timeout: float | None = None, on_status: OnDataset | None = None
    ) -> Dataset:
        """Poll the data set with backoff until it is no longer ``profiling``; its ``ready`` record.

        ``on_status`` sees every record polled. :class:`ProfilingFailed` (with
        the record) if it ended ``failed``; :class:`WaitTimeout` after
        ``timeout`` seconds (the profiling goes on).
        """
        record = backoff.poll(
            lambda: self.dataset(dataset_id),
            lambda found: dataset_status(found) != PROFILING,
            timeout,
            f"data set {dataset_id}",
            on_status,
        )
        return _usable(record)

    def datasets(self, page: int = 1, per_page: int = 50) -> DatasetList:
        """One page of your data sets (admins: all), newest first."""
        params = {"page": page, "per_page": per_page}
        return cast(DatasetList, self._json("GET", "/resource/datasets", params=params))

    def dataset(self, dataset_id: str) -> Dataset:
        """One data set's record and profile."""
        return cast(Dataset, self._json("GET", f"/resource/datasets/{dataset_id}"))

    def download_dataset(
        self,
        dataset_id: str,
        target: str | os.PathLike[str] | IO[bytes],
        progress: Progress = no_progress,
    ) -> int:
        """The uploaded file, streamed into ``target`` (a path or binary stream); bytes written."""
        return self._download(f"/resource/datasets/{dataset_id}/download", target, progress)

    def delete_dataset(self, dataset_id: str) -> None:
        """Delete a data set (models trained on it keep working)."""
        self._no_content("DELETE", f"/resource/datasets/{dataset_id}")

    # -- estimators and models ---------------------------------------------------------------

    def estimators(self) -> list[Estimator]:
        """Every estimator ``train`` accepts, with its parameters and defaults."""
        return cast(list[Estimator], self._json("GET", "/resource/estimators")["estimators"])

    def train(
        self,
        dataset_id: str,
        target: str,
        estimator: str,
        params: dict[str, Any] | None = None,
        *,
        features: list[str] | None = None,
        test_size: float | None = None,
        cv: int | None = None,
        name: str | None = None,
        compile: bool | None = None,
        target_is_categorical: bool | None = None,
        callback_url: str | None = None,
        callback_secret: str | None = None,
        columns: dict[str, str] | None = None,
        wait: bool = False,
        timeout: float | None = None,
        on_status: OnStatus | None = None,
    ) -> Model:
        """Train a model; without ``wait`` its first record, with it the record once finished.

        With ``wait`` a failed training raises :class:`TrainingFailed` (the
        model's record in its ``model``), and ``on_status`` sees the task's
        progress. ``columns`` gives columns roles over the data set profile's
        (``{"Name": "ignore", "Year": "datetime"}``).
        """
        optional = {
            "params": params,
            "features": features,
            "test_size": test_size,
            "cv": cv,
            "name": name,
            "compile": compile,
            "target_is_categorical": target_is_categorical,
            "callback_url": callback_url,
            "callback_secret": callback_secret,
            "columns": columns,
        }
        body: dict[str, Any] = {"dataset_id": dataset_id, "target": target, "estimator": estimator}
        body |= {key: value for key, value in optional.items() if value is not None}
        accepted = cast(ModelAccepted, self._json("POST", "/resource/models", json=body))
        if not wait:
            return self.model(accepted["model_id"])
        return self.wait_model(accepted["model_id"], timeout, on_status)

    def wait_model(
        self, model_id: str, timeout: float | None = None, on_status: OnStatus | None = None
    ) -> Model:
        """Wait for a model's training task to end (compiling included); the model's record.

        :class:`TrainingFailed` when it failed or was cancelled.
        """
        record = self.model(model_id)
        followed = False
        if record.get("task_id") and record["status"] in ("queued", "training", "ready"):
            with contextlib.suppress(NotFound):  # task owners are kept for 7 days
                self.wait_task(record["task_id"], timeout, on_status)
                followed = True
        if not followed and record["status"] in ("queued", "training"):
            backoff.poll(
                lambda: self.model(model_id),
                lambda r: r["status"] in ("ready", "failed"),
                timeout,
                f"model {model_id}",
            )
        record = self.model(model_id)
        if record["status"] == "failed":
            reason = record.get("error", "no reason given")
            raise TrainingFailed(f"training failed: {reason}", dict(record))
        if record["status"] != "ready":
            raise TrainingFailed(f"training ended with the model {record['status']}", dict(record))
        return record

    def models(self, page: int = 1, per_page: int = 50) -> ModelList:
        """One page of your models (admins: all), newest first."""
        params = {"page": page, "per_page": per_page}
        return cast(ModelList, self._json("GET", "/resource/models", params=params))

    def model(self, model_id: str) -> Model:
        """A model's record: status, metrics, input schema, engine, timings, error."""
        return cast(Model, self._json("GET", f"/resource/models/{model_id}"))

    # -- watching a model (docs/monitoring.md) ----------------------------------------------

    def log_predictions(self, model_id: str, on: bool = True) -> Model:
        """Turn the model's prediction log on (or off); its record."""
        return cast(
            Model,
            self._json("PATCH", f"/resource/models/{model_id}", json={"log_predictions": on}),
        )

    def drift(self, model_id: str, window: int | None = None) -> dict[str, Any]:
        """Each input column's drift in the newest ``window`` rows against training."""
        params = {"window": str(window)} if window is not None else None
        return cast(
            dict[str, Any], self._json("GET", f"/resource/models/{model_id}/drift", params=params)
        )

    def explain(
        self, model_id: str, file: str | os.PathLike[str], timeout: float | None = None
    ) -> dict[str, Any]:
        """Explain the rows of a CSV file: per row the prediction, base value and one
        contribution per input column. Waits for the task if the service answers 202."""
        headers = {"Content-Type": "text/csv", "Accept": "application/json"}
        response = self._http.send(
            "POST",
            f"/resource/models/{model_id}/explain",
            data=Path(file).read_bytes(),
            headers=headers,
        )
        answer = response.json()
        if response.status_code == 202:
            status = self.wait_task(answer["task_id"], timeout)
            if status["state"] != "SUCCESS":
                raise TrainingFailed(f"explaining failed: {status.get('error', status['state'])}")
            return status["result"]
        return cast(dict[str, Any], answer)

    def export_prediction_log(
        self, model_id: str, wait: bool = True, timeout: float | None = None
    ) -> dict[str, Any]:
        """Make a data set of the model's prediction log; the 202's fields (with ``wait``,
        once the task has succeeded)."""
        accepted = self._json("POST", f"/resource/models/{model_id}/prediction-log/export")
        if wait:
            status = self.wait_task(accepted["task_id"], timeout)
            if status["state"] != "SUCCESS":
                raise TrainingFailed(f"export failed: {status.get('error', status['state'])}")
        return cast(dict[str, Any], accepted)

    def delete_model(self, model_id: str) -> None:
        """Delete a model (a training one is stopped)."""
        self._no_content("DELETE", f"/resource/models/{model_id}")

    def download_model(
        self,
        model_id: str,
        target: str | os.PathLike[str] | IO[bytes],
        progress: Progress = no_progress,
        file_format: str = "bundle",
    ) -> int:
        """The signed bundle (or, ``file_format="onnx"``, the ONNX graph: its inputs are
        the record's ``engine.onnx_inputs``), streamed into ``target``; bytes written."""
        query = "" if file_format == "bundle" else f"?format={file_format}"
        return self._download(f"/resource/models/{model_id}/download{query}", target, progress)

    def load_model(
        self, model_id: str, path: str | os.PathLike[str], engine: str = "auto"
    ) -> LoadedModel:
        """Download the model's bundle to ``path`` and open it here
        (:func:`mlservice_client.load_model`), checked against the record's sha256."""
        record = self.model(model_id)
        self.download_model(model_id, path)
        return load_model(path, sha256=record.get("bundle_sha256"), engine=engine)

    def score_dataset(
        self,
        model_id: str,
        dataset_id: str,
        probabilities: bool = False,
        keep_columns: Sequence[str] = (),
        file_format: str = "parquet",
        name: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
        on_status: OnStatus | None = None,
    ) -> TaskStatus:
        """Score one of your data sets with the model on the service's workers (``POST
        /resource/models/{id}/predictions``); the predictions become a new data set.

        With ``wait`` the task's last status (on success its ``result`` names the new
        data set: ``dataset_id``), else the first one.
        """
        body: dict[str, Any] = {
            "dataset_id": dataset_id,
            "format": file_format,
            "keep_columns": list(keep_columns),
            "probabilities": probabilities,
        }
        if name is not None:
            body["name"] = name
        accepted = self._json("POST", f"/resource/models/{model_id}/predictions", json=body)
        if not wait:
            return self.task(accepted["task_id"])
        return self.wait_task(accepted["task_id"], timeout, on_status)

    def upload_model(
        self,
        file: str | os.PathLike[str] | IO[bytes],
        name: str | None = None,
        progress: Progress = no_progress,
    ) -> Model:
        """Import a bundle the service (or one sharing its secret) signed; the new model."""
        with _opened(file) as stream:
            path = Path(file) if isinstance(file, (str, os.PathLike)) else Path("model.mlbundle")
            filename = path.name
            fields = {"name": name} if name else {}
            body = MultipartStream(fields, "file", filename, stream, progress=progress)
            return cast(
                Model,
                self._json(
                    "POST",
                    "/resource/models/upload",
                    data=body,
                    headers={"Content-Type": body.content_type},
                ),
            )

    def report(self, model_id: str) -> Report:
        """The training report: metrics and the plots there are (``GET .../report``)."""
        return cast(Report, self._json("GET", f"/resource/models/{model_id}/report"))

    def save_report(
        self,
        model_id: str,
        directory: str | os.PathLike[str],
        formats: tuple[str, ...] = ("png", "svg"),
    ) -> list[Path]:
        """Save the report's plots (and its metrics as ``metrics.json``) into ``directory``."""
        try:
            report = self.report(model_id)
        except NotFound as exc:
            if exc.message.startswith(_NO_ROUTE):
                raise ServiceError(
                    f"this service has no training reports (GET /resource/models/{model_id}/report "
                    "is not one of its routes); update the service",
                    404,
                    exc.response,
                ) from None
            raise
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        saved = [folder / "metrics.json"]
        saved[0].write_text(_dumps(report.get("metrics", {})))
        for plot in report.get("plots", []):
            # The formats are listed under "formats", or given as one URL per format.
            offered = plot.get("formats") or [f for f in ("png", "svg") if f in plot]
            for fmt in offered:
                if fmt in formats:
                    name = f"{plot['name']}.{fmt}"
                    url = f"/resource/models/{model_id}/report/{name}"
                    self._download(url, folder / name, no_progress)
                    saved.append(folder / name)
        return saved

    # -- searches ----------------------------------------------------------------------------

    def start_search(
        self,
        dataset_id: str,
        target: str,
        *,
        estimator: str | None = None,
        space: dict[str, Any] | None = None,
        automl: bool = False,
        estimators: list[str] | None = None,
        strategy: str | None = None,
        max_trials: int | None = None,
        time_budget_s: float | None = None,
        cv: int | None = None,
        scoring: str | None = None,
        random_state: int | None = None,
        test_size: float | None = None,
        features: list[str] | None = None,
        trial_time_limit_s: float | None = None,
        register_as: str | None = None,
        name: str | None = None,
    ) -> SearchAccepted:
        """Start a hyperparameter search (``estimator`` and ``space``) or AutoML
        (``automl=True``, optionally ``estimators``); the service's ``202`` answer.

        ``space`` maps each parameter to a list of values or a distribution
        ``{"type": "int"|"float", "low", "high", "log"}``. Follow it with
        :meth:`search` or :meth:`wait_search`.
        """
        optional = {
            "estimator": estimator,
            "space": space,
            "automl": automl or None,
            "estimators": estimators,
            "strategy": strategy,
            "max_trials": max_trials,
            "time_budget_s": time_budget_s,
            "cv": cv,
            "scoring": scoring,
            "random_state": random_state,
            "test_size": test_size,
            "features": features,
            "trial_time_limit_s": trial_time_limit_s,
            "register_as": register_as,
            "name": name,
        }
        body: dict[str, Any] = {"dataset_id": dataset_id, "target": target}
        body |= {key: value for key, value in optional.items() if value is not None}
        return cast(SearchAccepted, self._json("POST", "/resource/searches", json=body))

    def search(self, search_id: str) -> Search:
        """A search: status, trials done of total, elapsed, the best so far, the leaderboard."""
        return cast(Search, self._json("GET", f"/resource/searches/{search_id}"))

    def searches(self, page: int = 1, per_page: int = 50) -> SearchList:
        """One page of your searches (admins: all), newest first, without leaderboards."""
        params = {"page": page, "per_page": per_page}
        return cast(SearchList, self._json("GET", "/resource/searches", params=params))

    def cancel_search(self, search_id: str) -> Search:
        """Cancel a search (its queued trials never run, running ones stop); the search."""
        return cast(Search, self._json("DELETE", f"/resource/searches/{search_id}"))

    def wait_search(
        self, search_id: str, timeout: float | None = None, on_status: OnSearch | None = None
    ) -> Search:
        """Wait for a search to end; its record once ``done``. ``on_status`` sees each
        record meanwhile (a live leaderboard). :class:`SearchFailed` (the record in its
        ``search``) when it failed or was cancelled."""
        record = backoff.poll(
            lambda: self.search(search_id),
            lambda r: r["status"] in SEARCH_ENDED,
            timeout,
            f"search {search_id}",
            on_each=on_status,
            cap=1.0,
        )
        if record["status"] != "done":
            reason = record.get("error") or record["status"]
            raise SearchFailed(f"search {record['status']}: {reason}", dict(record))
        return record

    def save_search_report(
        self,
        search_id: str,
        directory: str | os.PathLike[str],
        formats: tuple[str, ...] = ("png", "svg"),
    ) -> list[Path]:
        """Save a done search's report plots (and ``leaderboard.json``) into ``directory``."""
        report = self._json("GET", f"/resource/searches/{search_id}/report")
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        saved = [folder / "leaderboard.json"]
        saved[0].write_text(_dumps(self.search(search_id).get("leaderboard", [])))
        for plot in report.get("plots", []):
            for fmt in formats:
                if fmt in plot:
                    target = folder / f"{plot['name']}.{fmt}"
                    self._download(plot[fmt], target, no_progress)
                    saved.append(target)
        return saved

    # -- the registry ------------------------------------------------------------------------

    def create_registered_model(
        self,
        name: str,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> RegisteredModel:
        """A new registered model (a name to release versions under); its record."""
        optional = {
            "description": description,
            "tags": tags,
            "webhook_url": webhook_url,
            "webhook_secret": webhook_secret,
        }
        body: dict[str, Any] = {"name": name}
        body |= {key: value for key, value in optional.items() if value is not None}
        return cast(RegisteredModel, self._json("POST", "/resource/registry", json=body))

    def registered_models(self, page: int = 1, per_page: int = 50) -> RegisteredModelList:
        """One page of your registered models (admins: all), newest first."""
        params = {"page": page, "per_page": per_page}
        return cast(RegisteredModelList, self._json("GET", "/resource/registry", params=params))

    def registered_model(self, name: str) -> RegisteredModel:
        """A registered model with its versions (lineage, shadow counts) and aliases."""
        return cast(RegisteredModel, self._json("GET", f"/resource/registry/{name}"))

    def update_registered_model(self, name: str, **changes: Any) -> RegisteredModel:
        """Change ``description``, ``tags`` (merged; ``None`` removes one), the webhook
        (``webhook_url``, ``webhook_secret``; ``webhook_url=None`` removes it) or
        ``log_predictions`` (every prediction by this name kept in its model's log)."""
        return cast(
            RegisteredModel, self._json("PATCH", f"/resource/registry/{name}", json=changes)
        )

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model (it must have no aliases left)."""
        self._no_content("DELETE", f"/resource/registry/{name}")

    def add_version(self, name: str, model_id: str) -> RegisteredVersion:
        """A ready model of yours becomes the name's next version; that version."""
        body = {"model_id": model_id}
        return cast(
            RegisteredVersion,
            self._json("POST", f"/resource/registry/{name}/versions", json=body),
        )

    def registered_version(self, name: str, version: int) -> RegisteredVersion:
        """One version: its model, lineage, aliases and shadow counts."""
        path = f"/resource/registry/{name}/versions/{version}"
        return cast(RegisteredVersion, self._json("GET", path))

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int | None = None,
        *,
        versions: dict[int, int] | None = None,
        shadow: int | None = None,
    ) -> RegistryAlias:
        """Point ``alias`` at ``version``, or split it (``versions``: version -> weight), maybe
        with a ``shadow`` version; from its answer on, no worker serves the old version."""
        body: dict[str, Any] = {}
        if version is not None:
            body["version"] = version
        if versions is not None:
            body["versions"] = {str(number): weight for number, weight in versions.items()}
        if shadow is not None:
            body["shadow"] = shadow
        path = f"/resource/registry/{name}/aliases/{alias}"
        return cast(RegistryAlias, self._json("PUT", path, json=body))

    def alias(self, name: str, alias: str) -> RegistryAlias:
        """Where an alias points."""
        return cast(RegistryAlias, self._json("GET", f"/resource/registry/{name}/aliases/{alias}"))

    def remove_alias(self, name: str, alias: str) -> None:
        """Remove an alias (predictions by it are 404 from then on)."""
        self._no_content("DELETE", f"/resource/registry/{name}/aliases/{alias}")

    def registry_history(self, name: str) -> list[HistoryEntry]:
        """Every change to a registered model, oldest first (every page of it)."""
        entries: list[HistoryEntry] = []
        params: dict[str, str] = {}
        while True:
            page = self._json("GET", f"/resource/registry/{name}/history", params=params)
            entries += page["history"]
            if not page.get("next"):
                return entries
            params = {"after": page["next"]}


def dataset_status(record: Dataset) -> str:
    """The data set's ``status``; ``ready`` for a service older than statuses (it always was)."""
    return record.get("status", READY)


def profiling_failed(record: Dataset) -> ProfilingFailed:
    """The error for a data set whose profiling failed, naming it and the service's reason."""
    reason = record.get("error", "no reason given")
    return ProfilingFailed(
        f"data set {record['id']!r} ({record.get('name')}) failed profiling: {reason}",
        dict(record),
    )


def _usable(record: Dataset) -> Dataset:
    """The record, unless its profiling failed: then :class:`ProfilingFailed` with its error."""
    if dataset_status(record) == FAILED:
        raise profiling_failed(record)
    return record


#: The answer header naming the request's columns the model does not take (ignored).
IGNORED_HEADER = "X-Ignored-Columns"


def _prediction(response: requests.Response) -> Prediction:
    """A predict answer; the columns the service ignored (its ``X-Ignored-Columns``
    header, names percent-encoded, maybe ending ``+N more``) as ``ignored_columns``."""
    answer = cast(Prediction, response.json())
    header = response.headers.get(IGNORED_HEADER)
    if header:
        answer["ignored_columns"] = [unquote(part) for part in header.split(",")]
    return answer


def _predict_params(probabilities: bool, extra_columns: str | None) -> dict[str, str] | None:
    """A predict request's query: ``probabilities``, ``extra_columns`` (ignore, refuse)."""
    params = {"probabilities": "true"} if probabilities else {}
    if extra_columns:
        params["extra_columns"] = extra_columns
    return params or None


def _predict_path(model: str) -> str:
    """The predict route of a model id, the default model, ``name@alias`` or ``name@<version>``."""
    if model == DEFAULT_MODEL:
        return "/resource/predict"
    if "@" in model:
        name, _, alias = model.partition("@")
        if alias.isdigit():
            return f"/resource/registry/{name}/versions/{alias}/predict"
        return f"/resource/registry/{name}@{alias}/predict"
    return f"/resource/models/{model}/predict"


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2) + "\n"


@contextlib.contextmanager
def _opened(file: str | os.PathLike[str] | IO[bytes]) -> Iterator[IO[bytes]]:
    """A binary stream for a path (closed afterwards) or the stream given (left open)."""
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as stream:
            yield stream
    else:
        yield file
