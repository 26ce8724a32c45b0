"""make run and make up take their ports from the command line, with the defaults unchanged."""

import os
import subprocess

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
