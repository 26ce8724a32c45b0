"""make run and make up take their ports from the command line, with the defaults unchanged;
make run installs what the service runs, make test and make lint the tools on top."""

import os
import subprocess

import pytest

from mlservice.config import REPO_DIR


def dry_run(*args: str) -> str:
    """The commands ``make -n`` would run (nothing is started), whatever PORT the shell has."""
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "REDIS_PORT", "API_PORT")}
    result = subprocess.run(
        ["make", "-n", *args], cwd=REPO_DIR, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout


def test_make_run_defaults():
    assert "-m mlservice.stack --port 8880 --redis-port 6379 --api-port 8000" in dry_run("run")


def test_make_run_other_ports():
    commands = dry_run("run", "PORT=9000", "REDIS_PORT=6380", "API_PORT=8001")
    assert "-m mlservice.stack --port 9000 --redis-port 6380 --api-port 8001" in commands


def test_make_up_publishes_port():
    assert "MLSERVICE_PORT=9000 " in dry_run("up", "PORT=9000")
    # Without PORT, compose's own default (or MLSERVICE_PORT in .env) applies.
    assert "MLSERVICE_PORT" not in dry_run("up")


def test_make_run_installs_the_package_without_the_test_and_lint_tools(tmp_path):
    """From a clean clone (no virtualenv yet): the package and the client, nothing more."""
    commands = dry_run("run", f"VENV={tmp_path / 'venv'}")
    assert "pip install --quiet --disable-pip-version-check -e .\n" in commands
    assert "[test" not in commands
    assert commands.index("-e .\n") < commands.index("-m mlservice.stack")


@pytest.mark.parametrize("target", ["test", "lint", "setup"])
def test_make_test_and_lint_add_the_tools(tmp_path, target):
    commands = dry_run(target, f"VENV={tmp_path / 'venv'}")
    assert "-e .\n" in commands  # the package first (the same stamp make run makes) ...
    assert commands.index("-e .\n") < commands.index("-e '.[test,lint,docs]'")  # ... then the tools
