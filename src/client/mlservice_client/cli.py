"""``mls``: the ML Service from the shell, built on :class:`~mlservice_client.Client`.

Tables for people, ``--json`` for scripts; progress bars on standard error
only when it is a terminal; every failure one line on standard error and an
exit code a script can test (see ``EXIT_CODES``).
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, NoReturn, TypeVar, cast

import click

from . import __version__, config, formatting, tables
from .client import Client, dataset_status, profiling_failed
from .errors import (
    ConnectionFailed,
    MLServiceError,
    NotLoggedIn,
    ProfilingFailed,
    SearchFailed,
    ServiceError,
    TrainingFailed,
    Unauthorized,
    WaitTimeout,
)
from .progress import ByteBar, LiveBoard, StatusLine, TaskBar
from .schemas import FAILED, PROFILING, Dataset, Model, Prediction, Search

EXIT_OK = 0
EXIT_SERVICE = 1  # the service refused or failed (4xx/5xx), or an input file is unusable
EXIT_USAGE = 2  # a wrong command line, or not logged in
EXIT_TRAINING = 3  # the training (or init) ended failed
EXIT_CONNECT = 4  # the service could not be reached
EXIT_TIMEOUT = 5  # --timeout passed while waiting (the work goes on)
EXIT_INTERRUPTED = 130  # Ctrl-C

EXIT_CODES = f"""\b
Exit codes:
  {EXIT_OK}    success
  {EXIT_SERVICE}    the service refused or failed (HTTP 4xx/5xx), or an input file is unusable
       (a large upload's profiling failed too)
  {EXIT_USAGE}    wrong usage, or not logged in
  {EXIT_TRAINING}    training failed (mls train, mls models wait, mls init), or a search
       failed or was cancelled (mls search run, mls search wait)
  {EXIT_CONNECT}    cannot connect to the service
  {EXIT_TIMEOUT}    --timeout passed while waiting (the work goes on in the service)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)
"""

F = TypeVar("F", bound=Callable[..., Any])

#: ``-o FILE`` of the commands that write a file.
OUTPUT_FILE = click.Path(dir_okay=False, path_type=Path)


class State:
    """What the options of ``mls`` itself say, for every command."""

    def __init__(self, url: str | None = None, as_json: bool = False) -> None:
        self.url = url
        self.as_json = as_json
        self._client: Client | None = None

    def client(self) -> Client:
        """A client for the chosen service with the saved (or ``MLS_TOKEN``) token."""
        if self._client is None:
            login = config.current(self.url)
            if not login.url:
                raise NotLoggedIn(
                    "no service: run 'mls login URL' first, or set MLS_URL and MLS_TOKEN"
                )
            if not login.token:
                raise NotLoggedIn(
                    f"not logged in to {login.url}: run 'mls login {login.url}', or set MLS_TOKEN"
                )
            self._client = Client(login.url, token=login.token)
        return self._client


def _set_json(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(State).as_json = True


def json_option(command: F) -> F:
    """``--json`` on a command too (``mls datasets ls --json`` as well as ``mls --json ...``)."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Print the service's JSON instead of a table.",
    )(command)


def state() -> State:
    return click.get_current_context().ensure_object(State)


def emit(value: Any, human: Callable[[], str]) -> None:
    """Print ``value`` as JSON with ``--json``, else ``human()``'s text."""
    if state().as_json:
        click.echo(json.dumps(value, indent=2))
    else:
        text = human()
        if text:
            click.echo(text)


def note(message: str) -> None:
    """A line for the person at the terminal (standard error, so stdout stays data)."""
    click.echo(message, err=True)


# -- the command ------------------------------------------------------------------------------


@click.group(epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--url",
    metavar="URL",
    help="The service (default: MLS_URL, else the one of 'mls login').",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.version_option(__version__, prog_name="mls")
@click.pass_context
def cli(ctx: click.Context, url: str | None, as_json: bool) -> None:
    """The ML Service from the shell: data sets, training, models, the registry, predictions,
    users.

    Start with 'mls login URL'. MLS_URL and MLS_TOKEN override what it saved.
    """
    current = ctx.ensure_object(State)
    current.url = url
    current.as_json = current.as_json or as_json


# -- login ------------------------------------------------------------------------------------


@cli.command()
@click.argument("url")
@click.option("-u", "--username", prompt=True, help="Your user name (prompted if not given).")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (no prompt)."
)
@json_option
def login(url: str, username: str, password_stdin: bool) -> None:
    """Get a token for URL and keep it (mode 0600) in your config directory."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True)
    client = Client(url, username=username, password=password)
    answer = client.login()
    path = config.save(config.Login(client.url, answer["token"], username))
    expires = time.time() + answer["expires_in"]
    emit(
        {"url": client.url, "username": username, "expires_at": expires, "saved_in": str(path)},
        lambda: (
            f"Logged in to {client.url} as {username} until "
            f"{formatting.when(expires)}; token saved in {path}"
        ),
    )


@cli.command()
def logout() -> None:
    """Forget the saved token."""
    path = config.credentials_path()
    note(f"Removed {path}" if config.forget() else "Not logged in; nothing to remove")


# -- service ----------------------------------------------------------------------------------


@cli.command()
@click.option("--no-wait", is_flag=True, help="Return at once with the task id.")
@click.option("--timeout", type=float, default=600, show_default=True, help="Seconds to wait.")
@json_option
def init(no_wait: bool, timeout: float) -> None:
    """Train the service's default model (the one 'mls predict default' uses)."""
    client = state().client()
    with TaskBar("init") as bar:
        status = client.init(wait=not no_wait, timeout=timeout, on_status=bar)
    emit(status, lambda: f"task {status['task_id']}: {status.get('status', status['state'])}")


@cli.group()
def tasks() -> None:
    """Follow tasks you started."""


@tasks.command("show")
@click.argument("task_id")
@json_option
def tasks_show(task_id: str) -> None:
    """A task's state and progress."""
    status = state().client().task(task_id)
    emit(status, lambda: formatting.fields(list(status.items())))


# -- data sets --------------------------------------------------------------------------------


@cli.group()
def datasets() -> None:
    """Upload, list, show, download and delete data sets (CSV or Parquet)."""


def _dataset_row(record: Dataset) -> list[Any]:
    """A table row; a data set ``profiling`` or ``failed`` has no rows or columns yet: ``-``."""
    columns = record.get("columns")
    return [
        record["id"],
        record["name"],
        record.get("owner"),
        record.get("format"),
        dataset_status(record),
        record.get("rows"),
        len(columns) if columns is not None else None,
        formatting.size(record.get("size_bytes")),
        formatting.when(record.get("created_at")),
    ]


DATASET_HEADER = ["ID", "NAME", "OWNER", "FORMAT", "STATUS", "ROWS", "COLUMNS", "SIZE", "CREATED"]


@datasets.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="The data set's name (default: the file's name).")
@click.option(
    "--no-wait", is_flag=True, help="Do not wait for a large file's profile; print its record."
)
@click.option("--timeout", type=float, help="Seconds to wait for the profile at most.")
@click.option(
    "--delimiter",
    type=click.Choice([",", ";", "|", "tab"]),
    help="The CSV file's delimiter (default: detected).",
)
@click.option(
    "--decimal", type=click.Choice([".", ","]), help="Its decimal mark (default: detected)."
)
@json_option
def datasets_upload(
    file: Path,
    name: str | None,
    no_wait: bool,
    timeout: float | None,
    delimiter: str | None,
    decimal: str | None,
) -> None:
    """Upload FILE (CSV or Parquet), streamed, with a progress bar; prints its profile.

    A file over the service's [service] inline_profile_mb is profiled by a
    worker after the upload: mls waits for it (the time taken is shown on a
    terminal) unless --no-wait. Exits 1 if the file is not a usable table.
    """
    client = state().client()
    with ByteBar(f"uploading {file.name}") as bar:
        record = client.upload_dataset(
            file, name, progress=bar, wait=False, delimiter=delimiter, decimal=decimal
        )
    if dataset_status(record) == PROFILING:
        note(
            f"Data set {record['id']}: {record['name']}, stored; "
            f"profiling {formatting.size(record.get('size_bytes'))} in a worker"
        )
        if not no_wait:
            record = _wait_dataset(client, record, timeout)
    elif dataset_status(record) == FAILED:
        _failed(record)
    emit(record, lambda: _dataset_text(record))


def _wait_dataset(client: Client, record: Dataset, timeout: float | None) -> Dataset:
    """Wait for the profile; Ctrl-C stops waiting, not profiling, and says how to resume."""
    try:
        with StatusLine(f"profiling {record['name']}") as line:
            return client.wait_dataset(record["id"], timeout, on_status=line)
    except ProfilingFailed as failed:
        _failed(cast(Dataset, failed.dataset or record))
    except KeyboardInterrupt:
        note(f"Stopped waiting; the profiling goes on: mls datasets wait {record['id']}")
        raise


def _failed(record: Dataset) -> NoReturn:
    """A failed profile: the record with --json (for scripts), then the error (exit 1)."""
    if state().as_json:
        click.echo(json.dumps(record, indent=2))
    raise profiling_failed(record)


def _dataset_text(record: Dataset) -> str:
    """The record as a table, then its column profile, or why there is none (yet)."""
    head = formatting.table([_dataset_row(record)], DATASET_HEADER)
    if dataset_status(record) == PROFILING:
        return head + f"\n\nprofiling in a worker: mls datasets wait {record['id']}"
    if dataset_status(record) == FAILED:
        return head + f"\n\nerror: {record.get('error', 'no reason given')}"
    for text in record.get("notes", []):
        head += f"\n\nnote: {text}"
    columns = [
        [
            c["name"],
            c["dtype"],
            c.get("role", "-"),
            c["missing"],
            c["distinct"],
            ", ".join(c.get("categories_sample", [])[:5]),
        ]
        for c in record.get("columns", [])
    ]
    header = ["COLUMN", "TYPE", "ROLE", "MISSING", "DISTINCT", "SAMPLE"]
    return head + "\n\n" + formatting.table(columns, header)


@datasets.command("ls")
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@click.option("--per-page", type=click.IntRange(1, 500), default=50, show_default=True)
@json_option
def datasets_ls(page: int, per_page: int) -> None:
    """Your data sets (admins: everyone's), newest first."""
    answer = state().client().datasets(page, per_page)
    emit(
        answer,
        lambda: (
            formatting.table([_dataset_row(d) for d in answer["datasets"]], DATASET_HEADER)
            + f"\n({len(answer['datasets'])} of {answer['total']}, page {answer['page']})"
        ),
    )


@datasets.command("show")
@click.argument("dataset_id")
@json_option
def datasets_show(dataset_id: str) -> None:
    """A data set's record and column profile (or its state: profiling, failed and why)."""
    record = state().client().dataset(dataset_id)
    emit(record, lambda: _dataset_text(record))


@datasets.command("wait")
@click.argument("dataset_id")
@click.option("--timeout", type=float, help="Seconds to wait at most.")
@json_option
def datasets_wait(dataset_id: str, timeout: float | None) -> None:
    """Wait for a large upload's profile and print it; exits 1 if profiling failed."""
    client = state().client()
    record = client.dataset(dataset_id)
    if dataset_status(record) == PROFILING:
        record = _wait_dataset(client, record, timeout)
    elif dataset_status(record) == FAILED:
        _failed(record)
    emit(record, lambda: _dataset_text(record))


@datasets.command("download")
@click.argument("dataset_id")
@click.option("-o", "--output", type=OUTPUT_FILE, help="File (default: stdout).")
def datasets_download(dataset_id: str, output: Path | None) -> None:
    """Download a data set's file, streamed, to -o FILE or standard output."""
    with ByteBar("downloading") as bar:
        target: Path | IO[bytes] = output or sys.stdout.buffer
        written = state().client().download_dataset(dataset_id, target, progress=bar)
    if output:
        note(f"Saved {formatting.size(written)} to {output}")


@datasets.command("rm")
@click.argument("dataset_ids", nargs=-1, required=True)
def datasets_rm(dataset_ids: tuple[str, ...]) -> None:
    """Delete data sets (models trained on them keep working)."""
    for dataset_id in dataset_ids:
        state().client().delete_dataset(dataset_id)
        note(f"Deleted data set {dataset_id}")


# -- estimators and training ------------------------------------------------------------------


@cli.command()
@click.argument("name", required=False)
@click.option("--task", type=click.Choice(["classification", "regression"]), help="Only these.")
@json_option
def estimators(name: str | None, task: str | None) -> None:
    """The estimators you can train (with NAME: its parameters, their defaults and types)."""
    found = state().client().estimators()
    found = [e for e in found if task in (None, e["task"]) and name in (None, e["name"])]
    if name and not found:
        raise click.UsageError(f"no estimator {name!r}; 'mls estimators' lists them")
    if name:
        chosen = found[0]
        types = chosen.get("param_types", {})
        rows = [
            [param, value, types.get(param, "")]
            for param, value in sorted(chosen["params"].items())
        ]
        emit(chosen, lambda: formatting.table(rows, ["PARAMETER", "DEFAULT", "TYPES"]))
    else:
        rows = [[e["name"], e["task"], e["module"]] for e in found]
        emit(found, lambda: formatting.table(rows, ["NAME", "TASK", "MODULE"]))


def parse_param(text: str) -> tuple[str, Any]:
    """``key=value`` from ``--param``: the value as JSON when it parses (8, 0.5, true, null,
    [1, 2]), else as a string (lbfgs)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise click.BadParameter(f"{text!r} is not key=value", param_hint="--param")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def parse_role(text: str) -> tuple[str, str]:
    """``name=role`` from ``--column`` (the service checks the role)."""
    name, sep, role = text.rpartition("=")
    if not sep or not name.strip():
        raise click.BadParameter(f"{text!r} is not NAME=ROLE", param_hint="--column")
    return name, role.strip()


@cli.command()
@click.option("--dataset", "dataset_id", required=True, help="The data set's id.")
@click.option("--target", required=True, help="The column to predict.")
@click.option("--estimator", required=True, help="An estimator from 'mls estimators'.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A parameter (repeat).")
@click.option("--feature", "features", multiple=True, help="An input column (repeat; default all).")
@click.option("--test-size", type=float, help="Fraction held out for the metrics (0.25).")
@click.option("--cv", type=int, help="Also cross-validate with this many folds.")
@click.option("--name", help="The model's name.")
@click.option("--no-compile", is_flag=True, help="Serve with scikit-learn, not ONNX Runtime.")
@click.option("--target-is-categorical", is_flag=True, help="A numeric target holds classes.")
@click.option(
    "--column",
    "columns",
    multiple=True,
    metavar="NAME=ROLE",
    help="A column's role: numeric, categorical, datetime, text or ignore (repeat).",
)
@click.option("--no-wait", is_flag=True, help="Return at once with the model id.")
@click.option("--timeout", type=float, help="Seconds to wait at most (the training goes on).")
@json_option
def train(
    dataset_id: str,
    target: str,
    estimator: str,
    params: tuple[str, ...],
    features: tuple[str, ...],
    test_size: float | None,
    cv: int | None,
    name: str | None,
    no_compile: bool,
    target_is_categorical: bool,
    columns: tuple[str, ...],
    no_wait: bool,
    timeout: float | None,
) -> None:
    """Train a model and follow it with a progress bar; prints its metrics and warnings.

    Exits 3 if the training fails.
    """
    client = state().client()
    parsed = dict(parse_param(p) for p in params)
    record = client.train(
        dataset_id,
        target,
        estimator,
        parsed or None,
        features=list(features) or None,
        test_size=test_size,
        cv=cv,
        name=name,
        compile=False if no_compile else None,
        target_is_categorical=True if target_is_categorical else None,
        columns=dict(parse_role(c) for c in columns) or None,
    )
    note(f"Model {record['id']}: {record.get('name')}")
    if not no_wait:
        with TaskBar("training") as bar:
            record = _wait(client, record["id"], timeout, bar)
    emit(record, lambda: _model_text(record))


def _wait(client: Client, model_id: str, timeout: float | None, bar: TaskBar) -> Model:
    """Wait for the model; Ctrl-C stops waiting, not training, and says how to resume."""
    try:
        return client.wait_model(model_id, timeout, on_status=bar)
    except KeyboardInterrupt:
        bar.close()
        note(f"Stopped waiting; the training goes on: mls models wait {model_id}")
        raise


# -- models -----------------------------------------------------------------------------------


@cli.group()
def models() -> None:
    """List, show, wait for, download, upload and delete models; save training reports."""


def _score(record: Model) -> str:
    metrics = record.get("metrics") or {}
    for key in ("accuracy", "r2"):
        if key in metrics:
            return f"{key} {metrics[key]:.3f}"
    return "-"


def _model_text(record: Model) -> str:
    engine = record.get("engine") or {}
    pairs: list[tuple[str, Any]] = [
        ("id", record["id"]),
        ("name", record.get("name")),
        ("status", record["status"]),
        ("estimator", record.get("estimator")),
        ("target", record.get("target")),
        ("engine", engine.get("name")),
        ("engine reason", engine.get("reason")),
        ("version", record.get("version")),
        ("training seconds", record.get("training_seconds")),
    ]
    if engine.get("onnx_inputs"):  # what the ONNX graph (models download --format onnx) takes
        inputs = [f"{i['column']} -> {i['input']} ({i['type']})" for i in engine["onnx_inputs"]]
        pairs.append(("onnx inputs", "; ".join(inputs)))
    if record.get("error"):
        pairs.append(("error", record["error"]))
    text = formatting.fields(pairs)
    if record.get("metrics"):
        text += "\n\n" + formatting.metrics(record["metrics"])
    if record.get("warnings"):
        text += "\n\n" + formatting.warnings(record["warnings"])
    return text


@models.command("ls")
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@click.option("--per-page", type=click.IntRange(1, 500), default=50, show_default=True)
@json_option
def models_ls(page: int, per_page: int) -> None:
    """Your models (admins: everyone's), newest first."""
    answer = state().client().models(page, per_page)
    rows = [
        [
            m["id"],
            m.get("name"),
            m.get("owner"),
            m["status"],
            m.get("estimator"),
            (m.get("engine") or {}).get("name"),
            _score(m),
            formatting.when(m.get("created_at")),
        ]
        for m in answer["models"]
    ]
    header = ["ID", "NAME", "OWNER", "STATUS", "ESTIMATOR", "ENGINE", "SCORE", "CREATED"]
    emit(
        answer,
        lambda: (
            formatting.table(rows, header)
            + f"\n({len(rows)} of {answer['total']}, page {answer['page']})"
        ),
    )


@models.command("show")
@click.argument("model_id")
@json_option
def models_show(model_id: str) -> None:
    """A model's status, engine, metrics (and error)."""
    record = state().client().model(model_id)
    emit(record, lambda: _model_text(record))


@models.command("wait")
@click.argument("model_id")
@click.option("--timeout", type=float, help="Seconds to wait at most.")
@json_option
def models_wait(model_id: str, timeout: float | None) -> None:
    """Wait for a model's training to end; exits 3 if it failed."""
    client = state().client()
    with TaskBar("training") as bar:
        record = _wait(client, model_id, timeout, bar)
    emit(record, lambda: _model_text(record))


@models.command("download")
@click.argument("model_id")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["bundle", "onnx"]),
    default="bundle",
    show_default=True,
    help="The signed bundle (opens with mlservice_client.load_model) or the ONNX graph.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File (default: MODEL_ID.mlbundle, or MODEL_ID.onnx).",
)
def models_download(model_id: str, file_format: str, output: Path | None) -> None:
    """Download the model's signed bundle, or its ONNX graph (--format onnx), streamed.

    The graph's inputs are the model's engine.onnx_inputs ('mls models show MODEL --json').
    """
    suffix = "onnx" if file_format == "onnx" else "mlbundle"
    target = output or Path(f"{model_id}.{suffix}")
    with ByteBar(f"downloading {target.name}") as bar:
        written = state().client().download_model(model_id, target, bar, file_format)
    note(f"Saved {formatting.size(written)} to {target}")


@models.command("score")
@click.argument("model_id")
@click.argument("dataset_id")
@click.option("--probabilities", is_flag=True, help="Also probability_<class> columns.")
@click.option(
    "--keep",
    "keep_columns",
    multiple=True,
    help="A column of the data set to copy beside the predictions (repeat for more).",
)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["parquet", "csv"]),
    default="parquet",
    show_default=True,
    help="The new data set's format.",
)
@click.option("--name", help="The new data set's name.")
@click.option("--no-wait", is_flag=True, help="Print the task and return at once.")
@click.option("--timeout", type=float, help="Seconds to wait at most (exit 5 after).")
@json_option
def models_score(
    model_id: str,
    dataset_id: str,
    probabilities: bool,
    keep_columns: tuple[str, ...],
    file_format: str,
    name: str | None,
    no_wait: bool,
    timeout: float | None,
) -> None:
    """Score DATASET_ID (one of your data sets) with MODEL_ID on the service's workers.

    The predictions (a 'prediction' column, probability_<class> columns with
    --probabilities) become a new data set; prints its id ('mls datasets download ID').
    """
    client = state().client()
    with TaskBar("scoring") as bar:
        status = client.score_dataset(
            model_id,
            dataset_id,
            probabilities=probabilities,
            keep_columns=keep_columns,
            file_format=file_format,
            name=name,
            wait=not no_wait,
            timeout=timeout,
            on_status=bar,
        )
    if status["done"] and status["state"] != "SUCCESS":
        raise click.ClickException(f"scoring failed: {status.get('error', status['state'])}")
    result = status.get("result") or {}
    emit(
        status,
        lambda: (
            f"Scored into data set {result['dataset_id']}"
            if "dataset_id" in result
            else f"Task {status['task_id']}: {status['state']}"
        ),
    )


@models.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="The new model's name.")
@json_option
def models_upload(file: Path, name: str | None) -> None:
    """Upload a bundle (signed by this service or one sharing its secret)."""
    with ByteBar(f"uploading {file.name}") as bar:
        record = state().client().upload_model(file, name, progress=bar)
    emit(record, lambda: _model_text(record))


@models.command("rm")
@click.argument("model_ids", nargs=-1, required=True)
def models_rm(model_ids: tuple[str, ...]) -> None:
    """Delete models (a training one is stopped)."""
    for model_id in model_ids:
        state().client().delete_model(model_id)
        note(f"Deleted model {model_id}")


@models.command("report")
@click.argument("model_id")
@click.option(
    "-o",
    "--output",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to save the plots and metrics.json in.",
)
@click.option(
    "--format",
    "formats",
    type=click.Choice(["png", "svg"]),
    multiple=True,
    help="Plot formats (default: both).",
)
def models_report(model_id: str, directory: Path, formats: tuple[str, ...]) -> None:
    """Save the training report's plots (confusion matrix, ...) and metrics into a directory."""
    saved = state().client().save_report(model_id, directory, formats or ("png", "svg"))
    for path in saved:
        click.echo(str(path))


# -- watching a model (docs/monitoring.md) -----------------------------------------------------


def _drift_text(answer: dict[str, Any]) -> str:
    rows = [
        [
            c["feature"],
            "-" if c["psi"] is None else f"{c['psi']:.3f}",
            f"{c['missing_rate_change']:+.3f}",
            c["unseen"],
            "DRIFTED" if c["drifted"] else "",
        ]
        for c in answer["columns"]
    ]
    table = formatting.table(rows, ["column", "psi", "missing Δ", "unseen", ""])
    drifted = ", ".join(answer["drifted"]) or "none"
    return (
        f"{answer['rows']} rows ({answer['source']}) against {answer['training_rows']} "
        f"training rows; PSI threshold {answer['psi_threshold']}\n{table}\ndrifted: {drifted}"
    )


@cli.command()
@click.argument("model_id")
@click.option("--window", type=int, help="Rows to compare, the newest (default: the service's).")
@json_option
def drift(model_id: str, window: int | None) -> None:
    """Input drift of a model's recent predictions against its training data."""
    answer = state().client().drift(model_id, window)
    emit(answer, lambda: _drift_text(answer))


def _explain_text(answer: dict[str, Any]) -> str:
    lines = [f"method {answer['method']} (exact: {answer['exact']}), output: {answer['output']}"]
    for number, row in enumerate(answer["rows"]):
        parts = ", ".join(f"{k} {v:+.4f}" for k, v in row["contributions"].items())
        lines.append(
            f"{number}: {row['prediction']} = base {row['base_value']:.4f} + ({parts})"
            f" = {row['output']:.4f}"
        )
    return "\n".join(lines)


@cli.command()
@click.argument("model_id")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--timeout", type=float, help="Seconds to wait at most.")
@json_option
def explain(model_id: str, file: Path, timeout: float | None) -> None:
    """Explain the predictions of a CSV file's rows: one contribution per input column."""
    answer = state().client().explain(model_id, file, timeout)
    emit(answer, lambda: _explain_text(answer))


@cli.group("log")
def prediction_log() -> None:
    """A model's prediction log: turn it on or off, export it as a data set."""


def _set_log(model: str, on: bool) -> str:
    """Turn the log of a model (an id) or of a registered name on or off; what it was."""
    client = state().client()
    if re.fullmatch(r"[0-9a-f]{32}", model):
        client.log_predictions(model, on)
        return f"Model {model}"
    client.update_registered_model(model, log_predictions=on)
    return f"Predictions by {model!r}"


@prediction_log.command("on")
@click.argument("model")
def log_on(model: str) -> None:
    """Keep every prediction of MODEL (a model id), or every prediction by MODEL (a
    registered name: in the log of the model each one reaches)."""
    note(f"{_set_log(model, True)}: now logged")


@prediction_log.command("off")
@click.argument("model")
def log_off(model: str) -> None:
    """Stop logging MODEL's predictions (a model id or a registered name; the log stays)."""
    note(f"{_set_log(model, False)}: no longer logged")


@prediction_log.command("export")
@click.argument("model_id")
@click.option("--no-wait", is_flag=True, help="Answer once the export is queued.")
@click.option("--timeout", type=float, help="Seconds to wait at most.")
@json_option
def log_export(model_id: str, no_wait: bool, timeout: float | None) -> None:
    """Make a data set of the model's prediction log; prints its id."""
    answer = state().client().export_prediction_log(model_id, not no_wait, timeout)
    emit(answer, lambda: answer["dataset_id"])


# -- the registry -----------------------------------------------------------------------------


@cli.group()
def registry() -> None:
    """Release models by name: registered models, versions, aliases, history."""


def _tags(values: tuple[str, ...]) -> dict[str, str]:
    """``--tag key=value`` (repeat) as a dict."""
    tags = {}
    for text in values:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{text!r} is not key=value", param_hint="--tag")
        tags[key] = value
    return tags


def _alias_target(alias: dict[str, Any]) -> str:
    """Where an alias points, in a few characters: ``3``, ``3:90 4:10``, ``+ shadow 5``."""
    if alias.get("version") is not None:
        target = str(alias["version"])
    else:
        target = " ".join(f"{v}:{w}" for v, w in (alias.get("versions") or {}).items())
    if alias.get("shadow") is not None:
        target += f" (shadow {alias['shadow']})"
    return target


def _registered_text(record: dict[str, Any]) -> str:
    """A registered model: its fields, then its versions and aliases as tables."""
    pairs: list[tuple[str, Any]] = [
        ("name", record["name"]),
        ("owner", record.get("owner")),
        ("description", record.get("description") or "-"),
        ("tags", ", ".join(f"{k}={v}" for k, v in (record.get("tags") or {}).items()) or "-"),
        ("latest version", record.get("latest_version")),
        ("webhook", record.get("webhook_url") or "-"),
    ]
    text = formatting.fields(pairs)
    versions = record.get("versions") or []
    if versions:
        rows = []
        for version in versions:
            lineage = version.get("lineage") or {}
            counts = version.get("shadow") or {}
            rate = counts.get("agreement_rate")
            rows.append(
                [
                    version["version"],
                    version["model_id"],
                    lineage.get("estimator"),
                    (lineage.get("engine") or {}).get("name"),
                    ", ".join(version.get("aliases") or []) or "-",
                    f"{rate:.3f} of {counts['requests_compared']}" if rate is not None else "-",
                    formatting.when(version.get("registered_at")),
                ]
            )
        header = ["VERSION", "MODEL", "ESTIMATOR", "ENGINE", "ALIASES", "SHADOW AGREES", "ADDED"]
        text += "\n\n" + formatting.table(rows, header)
    aliases = record.get("aliases") or []
    if aliases:
        rows = [
            [a["alias"], _alias_target(a), a["set_by"], formatting.when(a["set_at"])]
            for a in aliases
        ]
        text += "\n\n" + formatting.table(rows, ["ALIAS", "VERSIONS", "SET BY", "SET"])
    return text


@registry.command("create")
@click.argument("name")
@click.option("--description", help="What the name releases.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A tag (repeat).")
@json_option
def registry_create(name: str, description: str | None, tags: tuple[str, ...]) -> None:
    """Register NAME (one namespace for the whole service)."""
    record = state().client().create_registered_model(name, description, _tags(tags) or None)
    emit(record, lambda: _registered_text(cast(dict[str, Any], record)))


@registry.command("list")
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@click.option("--per-page", type=click.IntRange(1, 500), default=50, show_default=True)
@json_option
def registry_list(page: int, per_page: int) -> None:
    """Your registered models (admins: everyone's), newest first."""
    answer = state().client().registered_models(page, per_page)
    rows = [
        [
            r["name"],
            r.get("owner"),
            r.get("latest_version"),
            r.get("description") or "-",
            formatting.when(r.get("updated_at")),
        ]
        for r in answer["registered_models"]
    ]
    header = ["NAME", "OWNER", "LATEST", "DESCRIPTION", "UPDATED"]
    emit(
        answer,
        lambda: (
            formatting.table(rows, header)
            + f"\n({len(rows)} of {answer['total']}, page {answer['page']})"
        ),
    )


@registry.command("show")
@click.argument("name")
@json_option
def registry_show(name: str) -> None:
    """A registered model: its versions (lineage, aliases, shadow agreement) and aliases."""
    record = state().client().registered_model(name)
    emit(record, lambda: _registered_text(cast(dict[str, Any], record)))


@registry.command("add")
@click.argument("name")
@click.argument("model_id")
@json_option
def registry_add(name: str, model_id: str) -> None:
    """Make the ready model MODEL_ID the next version of NAME."""
    version = state().client().add_version(name, model_id)
    emit(version, lambda: f"{name} version {version['version']}: model {version['model_id']}")


@registry.command("promote")
@click.argument("name")
@click.argument("version", type=click.IntRange(1))
@click.option("--alias", default="production", show_default=True, help="The alias to move.")
@click.option("--shadow", type=click.IntRange(1), help="Also copy each request to this version.")
@json_option
def registry_promote(name: str, version: int, alias: str, shadow: int | None) -> None:
    """Point NAME's --alias at VERSION (from its answer on, no worker serves the old one)."""
    moved = state().client().set_alias(name, alias, version, shadow=shadow)
    emit(moved, lambda: f"{name}@{alias} -> {_alias_target(cast(dict[str, Any], moved))}")


@registry.command("history")
@click.argument("name")
@json_option
def registry_history(name: str) -> None:
    """Every change to NAME, oldest first: when, who, what, before and after."""
    entries = state().client().registry_history(name)

    def described(entry: dict[str, Any]) -> str:
        if entry["event"].startswith("alias_"):
            before = _alias_target(entry["before"]) if entry["before"] else "-"
            after = _alias_target(entry["after"]) if entry["after"] else "-"
            return f"{entry['alias']}: {before} -> {after}"
        if entry["event"] == "version_added":
            return f"version {entry['version']}: model {entry['after']['model_id']}"
        if entry["event"] == "created":
            return ""
        return f"{json.dumps(entry['before'])} -> {json.dumps(entry['after'])}"

    rows = [
        [formatting.when(e["at"]), e["actor"], e["event"], described(cast(dict[str, Any], e))]
        for e in entries
    ]
    emit(entries, lambda: formatting.table(rows, ["WHEN", "WHO", "EVENT", "CHANGE"]))


# -- searches ---------------------------------------------------------------------------------

#: Leaderboard rows a terminal shows while a search runs, and at its end.
LIVE_ROWS = 10
LEADERBOARD_HEADER = ["#", "TRIAL", "ESTIMATOR", "PARAMS", "CV MEAN", "CV STD", "FIT S", "STATUS"]


@cli.group()
def search() -> None:
    """Hyperparameter searches and AutoML: run one with a live leaderboard, list, show,
    wait for, cancel, save the report."""


def parse_space(text: str) -> tuple[str, Any]:
    """``--space KEY=SPEC``: SPEC a JSON list (``[0.1, 1, 10]``), a JSON distribution
    (``{"type": "int", "low": 1, "high": 9}``), or ``int:LOW:HIGH[:log]`` /
    ``float:LOW:HIGH[:log]``."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise click.BadParameter(f"{text!r} is not key=spec", param_hint="--space")
    parts = raw.split(":")
    if parts[0] in ("int", "float") and len(parts) in (3, 4):
        if len(parts) == 4 and parts[3] != "log":
            raise click.BadParameter(
                f"{text!r}: the fourth part may only be 'log'", param_hint="--space"
            )
        try:
            low, high = float(parts[1]), float(parts[2])
        except ValueError:
            raise click.BadParameter(
                f"{text!r}: LOW and HIGH must be numbers", param_hint="--space"
            ) from None
        return key.strip(), {"type": parts[0], "low": low, "high": high, "log": len(parts) == 4}
    try:
        value = json.loads(raw)
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: give a JSON list of values, a JSON distribution, or int:LOW:HIGH[:log]",
            param_hint="--space",
        ) from None
    return key.strip(), value


def _params_text(params: dict[str, Any], width: int = 48) -> str:
    text = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(params.items()))
    return text if len(text) <= width else text[: width - 1] + "…"


def _rounded(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None


def _leaderboard_rows(record: Search, limit: int | None = None) -> list[list[Any]]:
    rows = []
    rank = 0
    for trial in (record.get("leaderboard") or [])[:limit]:
        done = trial.get("status") == "done"
        rank += 1 if done else 0
        status = trial.get("status", "")
        error = trial.get("error")
        if error and not done:
            status = f"{status}: {error[:40]}"
        rows.append(
            [
                rank if done else None,
                trial["trial"],
                trial.get("estimator"),
                _params_text(trial.get("params") or {}),
                _rounded(trial.get("cv_mean"), 4),
                _rounded(trial.get("cv_std"), 4),
                _rounded(trial.get("fit_seconds"), 3),
                status,
            ]
        )
    return rows


def _search_line(record: Search) -> str:
    """``search <id>: running (trials) - 7/20 done, 2 running, 1 failed - 12.3 s - best ...``"""
    counts = record.get("trials") or {}
    total = counts.get("total")
    status = record.get("status", "")
    if record.get("phase") and status == "running":
        status += f" ({record['phase']})"
    parts = [
        f"{counts.get('done', 0)}/{total if total is not None else '?'} done",
        f"{counts.get('running', 0)} running",
        f"{counts.get('failed', 0)} failed",
    ]
    elapsed = record.get("elapsed_s")
    best = record.get("best")
    line = f"search {record.get('id')}: {status} - " + ", ".join(parts)
    if elapsed is not None:
        line += f" - {elapsed:.1f} s"
    if best:
        line += f" - best {record.get('scoring')} {best.get('cv_mean'):.4f} (trial {best['trial']})"
    return line


def _live_lines(record: Search) -> list[str]:
    """What the terminal shows while a search runs: its line, its first rows."""
    table = formatting.table(_leaderboard_rows(record, LIVE_ROWS), LEADERBOARD_HEADER)
    return [_search_line(record), *table.splitlines()]


def _search_text(record: Search) -> str:
    """A search for people: its fields, then its whole leaderboard."""
    pairs: list[tuple[str, Any]] = [
        ("id", record.get("id")),
        ("name", record.get("name")),
        ("status", record.get("status")),
        ("strategy", record.get("strategy")),
        ("scoring", record.get("scoring")),
        ("trials", _search_line(record).split(": ", 1)[1]),
        ("best model", record.get("best_model_id") or "-"),
        ("held-out score", record.get("test_score")),
    ]
    if record.get("error"):
        pairs.append(("error", record["error"]))
    text = formatting.fields(pairs)
    rows = _leaderboard_rows(record)
    if rows:
        text += "\n\n" + formatting.table(rows, LEADERBOARD_HEADER)
    return text


def _wait_search(client: Client, search_id: str, timeout: float | None) -> Search:
    """Wait with the live leaderboard; Ctrl-C stops waiting, not the search."""
    try:
        with LiveBoard(_live_lines) as board:
            return client.wait_search(search_id, timeout, on_status=board)
    except SearchFailed as failed:
        if state().as_json and failed.search:
            click.echo(json.dumps(failed.search, indent=2))
        elif failed.search:
            click.echo(_search_text(cast(Search, failed.search)))
        raise
    except KeyboardInterrupt:
        note(f"Stopped waiting; the search goes on: mls search wait {search_id}")
        raise


@search.command("run")
@click.option("--dataset", "dataset_id", required=True, help="The data set's id.")
@click.option("--target", required=True, help="The column to predict.")
@click.option("--estimator", help="An estimator from 'mls estimators' (or --automl).")
@click.option(
    "--space",
    "space",
    multiple=True,
    metavar="KEY=SPEC",
    help="A parameter to search (repeat): a JSON list, a JSON distribution, or "
    "int:LOW:HIGH[:log] / float:LOW:HIGH[:log].",
)
@click.option("--automl", is_flag=True, help="Search estimators too, in curated spaces.")
@click.option("--candidate", "estimators", multiple=True, help="With --automl: an estimator.")
@click.option("--strategy", type=click.Choice(["grid", "random", "tpe"]), help="Default: random.")
@click.option("--max-trials", type=click.IntRange(1), help="At most this many trials.")
@click.option("--time-budget", type=float, help="No trial starts after this many seconds.")
@click.option("--cv", type=click.IntRange(2, 20), help="Folds per trial (5).")
@click.option("--scoring", help="A scikit-learn scorer (accuracy / r2).")
@click.option("--random-state", type=click.IntRange(0), help="Seeds folds, estimators, draws.")
@click.option("--feature", "features", multiple=True, help="An input column (repeat; default all).")
@click.option("--register-as", help="Add the best model to this registered name.")
@click.option("--name", help="The search's name.")
@click.option("--no-wait", is_flag=True, help="Return at once with the search's id.")
@click.option("--timeout", type=float, help="Seconds to wait at most (the search goes on).")
@json_option
def search_run(
    dataset_id: str,
    target: str,
    estimator: str | None,
    space: tuple[str, ...],
    automl: bool,
    estimators: tuple[str, ...],
    strategy: str | None,
    max_trials: int | None,
    time_budget: float | None,
    cv: int | None,
    scoring: str | None,
    random_state: int | None,
    features: tuple[str, ...],
    register_as: str | None,
    name: str | None,
    no_wait: bool,
    timeout: float | None,
) -> None:
    """Start a search and follow its leaderboard live (on a terminal); prints the final one.

    Exits 3 if the search fails or is cancelled.
    """
    client = state().client()
    accepted = client.start_search(
        dataset_id,
        target,
        estimator=estimator,
        space=dict(parse_space(s) for s in space) or None,
        automl=automl,
        estimators=list(estimators) or None,
        strategy=strategy,
        max_trials=max_trials,
        time_budget_s=time_budget,
        cv=cv,
        scoring=scoring,
        random_state=random_state,
        features=list(features) or None,
        register_as=register_as,
        name=name,
    )
    search_id = accepted["search_id"]
    note(f"Search {search_id}: follow it with mls search show {search_id}")
    record = client.search(search_id)
    if not no_wait:
        record = _wait_search(client, search_id, timeout)
    emit(record, lambda: _search_text(record))


@search.command("ls")
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@click.option("--per-page", type=click.IntRange(1, 500), default=50, show_default=True)
@json_option
def search_ls(page: int, per_page: int) -> None:
    """Your searches (admins: everyone's), newest first."""
    answer = state().client().searches(page, per_page)
    rows = []
    for found in answer["searches"]:
        counts = found.get("trials") or {}
        best = found.get("best") or {}
        rows.append(
            [
                found["id"],
                found.get("name"),
                found.get("status"),
                found.get("strategy"),
                f"{counts.get('done', 0)}/{counts.get('total') or '?'}",
                _rounded(best.get("cv_mean"), 4),
                found.get("best_model_id"),
                formatting.when(found.get("created_at")),
            ]
        )
    header = ["ID", "NAME", "STATUS", "STRATEGY", "DONE", "BEST CV", "BEST MODEL", "CREATED"]
    emit(
        answer,
        lambda: (
            formatting.table(rows, header)
            + f"\n({len(rows)} of {answer['total']}, page {answer['page']})"
        ),
    )


@search.command("show")
@click.argument("search_id")
@json_option
def search_show(search_id: str) -> None:
    """A search: status, trials, best model, and its leaderboard."""
    record = state().client().search(search_id)
    emit(record, lambda: _search_text(record))


@search.command("wait")
@click.argument("search_id")
@click.option("--timeout", type=float, help="Seconds to wait at most.")
@json_option
def search_wait(search_id: str, timeout: float | None) -> None:
    """Follow a search's leaderboard live until it ends; exits 3 if it failed or was cancelled."""
    record = _wait_search(state().client(), search_id, timeout)
    emit(record, lambda: _search_text(record))


@search.command("cancel")
@click.argument("search_id")
@json_option
def search_cancel(search_id: str) -> None:
    """Cancel a search: queued trials never run, running ones stop; the leaderboard stays."""
    record = state().client().cancel_search(search_id)
    emit(record, lambda: _search_text(record))


@search.command("report")
@click.argument("search_id")
@click.option(
    "-o",
    "--output",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to save the plots and leaderboard.json in.",
)
@click.option(
    "--format",
    "formats",
    type=click.Choice(["png", "svg"]),
    multiple=True,
    help="Plot formats (default: both).",
)
def search_report(search_id: str, directory: Path, formats: tuple[str, ...]) -> None:
    """Save a done search's report: score by trial, by parameter, the leaderboard."""
    saved = state().client().save_search_report(search_id, directory, formats or ("png", "svg"))
    for path in saved:
        note(f"Saved {path}")


# -- predictions ------------------------------------------------------------------------------


@cli.command()
@click.argument("model")
@click.argument("file", required=False, default="-")
@click.option(
    "--format",
    "input_format",
    type=click.Choice(["csv", "json", "jsonl", "parquet"]),
    help="Input format (default: FILE's extension; stdin: json if it starts with { or [; csv).",
)
@click.option("-o", "--output", type=OUTPUT_FILE, help="File (default: stdout).")
@click.option(
    "--output-format",
    type=click.Choice(["csv", "json"]),
    help="Output format (default: from -o's extension, else csv for CSV input and json otherwise).",
)
@click.option("--probabilities", is_flag=True, help="Also the class probabilities.")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=10_000, show_default=True)
@click.option(
    "--refuse-extra-columns",
    is_flag=True,
    help="Fail on columns the model does not take (default: the service ignores them).",
)
def predict(
    model: str,
    file: str,
    input_format: str | None,
    output: Path | None,
    output_format: str | None,
    probabilities: bool,
    batch_size: int,
    refuse_extra_columns: bool,
) -> None:
    """Predict FILE (CSV, JSON, JSON Lines or Parquet; '-' or none: stdin) with MODEL.

    MODEL is a model id, 'default' for the service's default model, or a
    registered model as NAME@ALIAS (NAME@3: its version 3). Writes
    CSV (a 'prediction' column, and probability_<class> columns with --probabilities)
    or JSON ({"predictions": [...]}), to stdout or -o.
    """
    source: str | IO[bytes] = file
    if file == "-":
        stdin = sys.stdin.buffer
        input_format = input_format or _sniff(stdin)
        source = stdin
    found = tables.format_of(file if file != "-" else "stdin", input_format)
    out_format = output_format or _output_format(output, found)
    extra = "refuse" if refuse_extra_columns else None
    answers = state().client().iter_predict(source, model, probabilities, found, batch_size, extra)
    ignored: list[str] = []
    with _output(output) as out:
        if out_format == "csv":
            tables.write_csv(_noting_ignored(answers, ignored), out)
        else:
            merged = tables.merge(_noting_ignored(answers, ignored))
            merged.pop("ignored_columns", None)  # said on standard error, as for CSV
            json.dump(merged, out)
            out.write("\n")
    if ignored:
        note(
            f"Ignored column(s) the model does not take: {', '.join(ignored)} "
            "(--refuse-extra-columns to refuse them)"
        )


def _noting_ignored(answers: Iterable[Prediction], ignored: list[str]) -> Iterator[Prediction]:
    """``answers`` as they come, the columns the service ignored collected in ``ignored``."""
    for answer in answers:
        for name in answer.get("ignored_columns", []):
            if name not in ignored:
                ignored.append(name)
        yield answer


def _output_format(output: Path | None, input_format: str) -> str:
    """JSON with --json, else -o's extension (.csv, .json), else CSV for CSV input, else JSON."""
    suffix = output.suffix.lower().lstrip(".") if output else ""
    if state().as_json:
        return "json"
    if suffix in ("csv", "json"):
        return suffix
    return "csv" if input_format == "csv" else "json"


def _sniff(stream: Any) -> str:
    """``json`` when standard input starts with ``{`` or ``[``, else ``csv``."""
    peek = getattr(stream, "peek", None)
    head = peek(64).lstrip()[:1] if peek else b""
    return "json" if head in (b"{", b"[") else "csv"


class _output:
    """Standard output, or a file written whole or not at all."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".part") if path else None

    def __enter__(self) -> IO[str]:
        if self.partial is None:
            return sys.stdout
        self.file = open(self.partial, "w", newline="")  # noqa: SIM115 - closed in __exit__
        return self.file

    def __exit__(self, kind: object, *rest: object) -> None:
        if self.partial is None or self.path is None:
            return
        self.file.close()
        if kind is None:
            self.partial.replace(self.path)
        else:
            self.partial.unlink(missing_ok=True)


# -- users ------------------------------------------------------------------------------------


@cli.group()
def users() -> None:
    """Accounts (admins): list, add, show, change (password, role), remove."""


@users.command("ls")
@json_option
def users_ls() -> None:
    """Every account and its role."""
    found = state().client().users()
    rows = [[u["username"], u["role"]] for u in found]
    emit(found, lambda: formatting.table(rows, ["USERNAME", "ROLE"]))


def _new_password(password_stdin: bool, prompt: str = "Password") -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=True))


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["user", "admin"]), default="user", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@json_option
def users_add(username: str, role: str, password_stdin: bool) -> None:
    """Create an account (the password is prompted for)."""
    user = state().client().create_user(username, _new_password(password_stdin), role)
    emit(user, lambda: f"Created {user['username']} ({user['role']})")


@users.command("show")
@click.argument("username")
@json_option
def users_show(username: str) -> None:
    """One account and its role."""
    user = state().client().user(username)
    emit(user, lambda: formatting.fields(list(user.items())))


@users.command("set")
@click.argument("username")
@click.option("--password", "change_password", is_flag=True, help="Set a new password (prompted).")
@click.option("--role", type=click.Choice(["user", "admin"]), help="Set the role (admins).")
@click.option(
    "--current-password",
    "ask_current",
    is_flag=True,
    help="Also prompt for the current password (users changing their own).",
)
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@click.option(
    "--disable/--enable",
    "disabled",
    default=None,
    help="Disable the account (its tokens stop, it cannot log in) or enable it again (admins).",
)
@json_option
def users_set(
    username: str,
    change_password: bool,
    role: str | None,
    ask_current: bool,
    password_stdin: bool,
    disabled: bool | None,
) -> None:
    """Change an account's password and/or role, or disable or enable it (PATCH); its
    earlier tokens stop working."""
    if not (change_password or password_stdin or role or disabled is not None):
        raise click.UsageError("nothing to change: give --password, --role or --disable/--enable")
    current = click.prompt("Current password", hide_input=True) if ask_current else None
    password = None
    if change_password or password_stdin:
        password = _new_password(password_stdin, "New password")
    user = state().client().update_user(username, password, role, current, disabled)
    state_word = " (disabled)" if user.get("disabled") else ""
    emit(
        user,
        lambda: (
            f"Changed {user['username']} ({user['role']}){state_word}; earlier tokens are revoked"
        ),
    )


@users.command("rm")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def users_rm(username: str, yes: bool) -> None:
    """Delete an account with its data sets and models."""
    if not yes:
        click.confirm(f"Delete {username} with all their data sets and models?", abort=True)
    state().client().delete_user(username)
    note(f"Deleted {username}")


# -- entry point ------------------------------------------------------------------------------


def fail(message: str, code: int) -> NoReturn:
    """One line on standard error, then exit with ``code``."""
    click.echo(f"mls: {message}", err=True)
    sys.exit(code)


def exit_code(error: MLServiceError) -> int:
    """The exit code of a client error (see ``EXIT_CODES``)."""
    if isinstance(error, ConnectionFailed):
        return EXIT_CONNECT
    if isinstance(error, TrainingFailed):
        return EXIT_TRAINING
    if isinstance(error, WaitTimeout):
        return EXIT_TIMEOUT
    if isinstance(error, NotLoggedIn):
        return EXIT_USAGE
    return EXIT_SERVICE


def describe(error: MLServiceError) -> str:
    """The one line for an error: the service's message, its status, and a hint for 401."""
    if isinstance(error, Unauthorized):
        return f"{error} - run 'mls login URL' for a new token"
    if isinstance(error, ServiceError):
        return str(error)
    if isinstance(error, ProfilingFailed) and error.dataset:
        dataset_id = error.dataset.get("id")
        return (
            f"{error.message}; fix the file and upload it again "
            f"('mls datasets rm {dataset_id}' deletes this record)"
        )
    return error.message


def main(argv: list[str] | None = None) -> None:
    """``mls``: run a command; every failure is one line and an exit code."""
    try:
        code = cli.main(args=argv, prog_name="mls", standalone_mode=False)
    except click.ClickException as usage:
        usage.show()
        sys.exit(usage.exit_code)
    except (click.Abort, KeyboardInterrupt):
        fail("interrupted", EXIT_INTERRUPTED)
    except MLServiceError as error:
        fail(describe(error), exit_code(error))
    except BrokenPipeError:
        sys.exit(EXIT_OK)  # `mls ... | head`: the reader had enough
    except OSError as error:
        fail(f"{error.strerror or error}: {error.filename or ''}".rstrip(": "), EXIT_SERVICE)
    sys.exit(code if isinstance(code, int) else EXIT_OK)  # --help, --version: click's Exit


if __name__ == "__main__":  # pragma: no cover
    main()
