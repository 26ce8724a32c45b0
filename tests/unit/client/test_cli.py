"""The ``mls`` command's pure parts: --help everywhere, parameters, exit codes, tables."""

import click
import pytest
from click.testing import CliRunner

from mlservice_client import cli, formatting
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
