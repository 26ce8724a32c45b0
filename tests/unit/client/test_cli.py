"""The ``mls`` command's pure parts: --help everywhere, parameters, exit codes, tables."""

import click
import pytest
from click.testing import CliRunner

from mlservice_client import cli, formatting
from mlservice_client.client import profiling_failed
from mlservice_client.errors import (
    ConnectionFailed,
    Invalid,
    NotLoggedIn,
    TrainingFailed,
    WaitTimeout,
)


def commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [(), *commands(cli.cli)], ids=lambda p: " ".join(p) or "mls")
def test_every_command_has_help(path):
    result = CliRunner().invoke(cli.cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: {' '.join(('cli', *path))}")


def test_help_documents_the_exit_codes():
    text = CliRunner().invoke(cli.cli, ["--help"]).output
    for code in (0, 1, 2, 3, 4, 5, 130):
        assert f"\n    {code} " in text


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("n_estimators=50", ("n_estimators", 50)),
        ("solver=lbfgs", ("solver", "lbfgs")),
        ("C=0.5", ("C", 0.5)),
        ("class_weight=null", ("class_weight", None)),
        ("hidden_layer_sizes=[10, 5]", ("hidden_layer_sizes", [10, 5])),
        ("a==b", ("a", "=b")),
    ],
)
def test_params_are_json_when_they_parse(text, pair):
    assert cli.parse_param(text) == pair


def test_a_param_without_equals_is_a_usage_error():
    with pytest.raises(click.BadParameter):
        cli.parse_param("n_estimators")


def test_exit_codes_by_error():
    assert cli.exit_code(Invalid("bad", 422)) == cli.EXIT_SERVICE
    assert cli.exit_code(ConnectionFailed("down")) == cli.EXIT_CONNECT
    assert cli.exit_code(TrainingFailed("failed")) == cli.EXIT_TRAINING
    assert cli.exit_code(WaitTimeout("slow")) == cli.EXIT_TIMEOUT
    assert cli.exit_code(NotLoggedIn("who")) == cli.EXIT_USAGE


def test_training_metrics_beside_held_out_ones_and_warnings():
    text = formatting.metrics({"r2": 0.5, "rmse": 2.0, "training": {"r2": 0.9, "rmse": 1.0}})
    assert text.splitlines() == [
        "metric  held-out  training",
        "r2        0.5000    0.9000",
        "rmse      2.0000    1.0000",
    ]
    assert formatting.warnings([{"kind": "rows_dropped", "message": "8 rows"}]) == (
        "warnings\n- 8 rows"
    )


def test_metrics_table_with_cv_and_confusion_matrix():
    text = formatting.metrics(
        {
            "accuracy": 0.5,
            "train_rows": 8,
            "cv": {"scoring": "accuracy", "mean": 0.75, "std": 0.1, "folds": 3},
            "confusion_matrix": {"labels": ["no", "yes"], "matrix": [[3, 1], [0, 4]]},
        }
    )
    assert text.splitlines() == [
        "metric       value",
        "accuracy     0.5000",
        "train_rows   8",
        "cv accuracy  0.7500 ± 0.1000 (3 folds)",
        "",
        "confusion matrix (rows: true class, columns: predicted)",
        "     no  yes",
        "no    3    1",
        "yes   0    4",
    ]


#: A data set record in each documented state (ml-service.yml's Dataset): only ``ready`` has a
#: profile; the 202 answer adds ``task_id`` and ``status_url``; ``failed`` has ``error``.
BASE = {
    "id": "0b8e5f0a1c2d4e6f8a9b0c1d2e3f4a5b",
    "name": "big.csv",
    "owner": "alice",
    "format": "csv",
    "size_bytes": 17_000_000,
    "upload_seconds": 0.5,
    "created_at": 1795425776.5,
}
PROFILING = BASE | {"status": "profiling", "task_id": "5d41", "status_url": "/x/5d41"}
FAILED = BASE | {"status": "failed", "task_id": "5d41", "error": "ragged rows: Row #9"}
COLUMN = {
    "name": "plan",
    "dtype": "string",
    "missing": 1,
    "distinct": 2,
    "distinct_is_lower_bound": False,
    "categories_sample": ["basic", "pro"],
}
READY = BASE | {"status": "ready", "rows": 400, "columns": [COLUMN], "delimiter": ","}


@pytest.mark.parametrize(
    ("record", "status", "rows", "columns"),
    [
        (PROFILING, "profiling", None, None),
        (FAILED, "failed", None, None),
        (READY, "ready", 400, 1),
    ],
    ids=["profiling", "failed", "ready"],
)
def test_a_dataset_row_needs_no_profile(record, status, rows, columns):
    row = cli._dataset_row(record)
    assert row[:7] == [BASE["id"], "big.csv", "alice", "csv", status, rows, columns]


def test_a_record_without_status_is_from_an_older_service_and_ready():
    older = {key: value for key, value in READY.items() if key != "status"}
    assert cli._dataset_row(older)[4] == "ready"


def test_the_text_of_each_state():
    assert cli._dataset_text(PROFILING).endswith(
        f"\n\nprofiling in a worker: mls datasets wait {BASE['id']}"
    )
    assert cli._dataset_text(FAILED).endswith("\n\nerror: ragged rows: Row #9")
    ready = cli._dataset_text(READY).splitlines()
    assert ready[-2:] == [
        "COLUMN  TYPE    ROLE  MISSING  DISTINCT  SAMPLE",
        "plan    string  -           1         2  basic, pro",
    ]
    assert ready[1].split()[4:6] == ["ready", "400"]


def test_a_failed_profile_is_one_line_naming_the_fix_and_exits_1():
    error = profiling_failed(FAILED)
    assert cli.exit_code(error) == cli.EXIT_SERVICE
    assert cli.describe(error) == (
        f"data set {BASE['id']!r} (big.csv) failed profiling: ragged rows: Row #9; "
        f"fix the file and upload it again ('mls datasets rm {BASE['id']}' deletes this record)"
    )


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("C=[0.1, 1, 10]", ("C", [0.1, 1, 10])),
        (
            "n_estimators=int:10:500",
            ("n_estimators", {"type": "int", "low": 10.0, "high": 500.0, "log": False}),
        ),
        (
            "C=float:0.001:100:log",
            ("C", {"type": "float", "low": 0.001, "high": 100.0, "log": True}),
        ),
        (
            'max_depth={"type": "int", "low": 2, "high": 9}',
            ("max_depth", {"type": "int", "low": 2, "high": 9}),
        ),
        ("max_depth=[null, 4]", ("max_depth", [None, 4])),
    ],
)
def test_space_options_are_lists_or_distributions(text, pair):
    assert cli.parse_space(text) == pair


@pytest.mark.parametrize("text", ["C", "C=int:1", "C=int:a:b", "C=float:1:2:ln", "C=lbfgs"])
def test_a_bad_space_option_is_a_usage_error(text):
    with pytest.raises(click.BadParameter):
        cli.parse_space(text)


def test_the_live_board_redraws_in_place():
    import io

    from mlservice_client.progress import LiveBoard

    stream = io.StringIO()
    board = LiveBoard(lambda record: [f"line {record['n']}", "row"], enabled=True, stream=stream)
    board({"n": 1})
    board({"n": 1})  # the same lines: nothing drawn
    board({"n": 2})
    assert stream.getvalue() == "line 1\nrow\n" + "\x1b[2F\x1b[J" + "line 2\nrow\n"
    quiet = io.StringIO()
    LiveBoard(lambda record: ["x"], enabled=False, stream=quiet)({"n": 1})
    assert quiet.getvalue() == ""


def test_a_search_reads_as_its_line_and_its_leaderboard():
    record = {
        "id": "s1",
        "status": "running",
        "phase": "trials",
        "scoring": "accuracy",
        "trials": {"done": 2, "running": 1, "failed": 1, "total": 5},
        "elapsed_s": 3.25,
        "best": {"trial": 1, "cv_mean": 0.91234},
        "leaderboard": [
            {
                "trial": 1,
                "estimator": "SVC",
                "params": {"C": 1},
                "status": "done",
                "cv_mean": 0.91234,
                "cv_std": 0.01,
                "fit_seconds": 0.5,
            },
            {
                "trial": 0,
                "estimator": "SVC",
                "params": {"C": 0.1},
                "status": "done",
                "cv_mean": 0.8,
                "cv_std": 0.02,
                "fit_seconds": 0.4,
            },
            {
                "trial": 2,
                "estimator": "SVC",
                "params": {"C": -1},
                "status": "failed",
                "error": "C must be positive",
            },
        ],
    }
    lines = cli._live_lines(record)
    assert lines[0] == (
        "search s1: running (trials) - 2/5 done, 1 running, 1 failed - 3.2 s - best accuracy "
        "0.9123 (trial 1)"
    )
    assert lines[1].split() == [
        "#",
        "TRIAL",
        "ESTIMATOR",
        "PARAMS",
        "CV",
        "MEAN",
        "CV",
        "STD",
        "FIT",
        "S",
        "STATUS",
    ]
    assert lines[2].split()[:4] == ["1", "1", "SVC", "C=1"]
    assert lines[4].endswith("failed: C must be positive")
