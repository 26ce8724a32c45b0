"""Start-up refuses bad configuration with one clear line, not a traceback."""

import subprocess
import sys

import pexpect
import pytest

from mlservice.config import SRC_DIR
from mlservice.stack import free_port

GUNICORN = [sys.executable, "-m", "gunicorn", "-c", str(SRC_DIR / "gunicorn.conf.py")]
WORKER = [
    sys.executable,
    "-m",
    "celery",
    "-A",
    "mlservice.worker",
    "worker",
    "-n",
    "celery-bad@%h",
    "--without-mingle",
    "--without-gossip",
]


def start(argv, env, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def bad_unit_env(stack, tmp_path):
    config = tmp_path / "config.properties"
    config.write_text("[auth_info]\nexpiry = 3\nexpiry_time_unit = fortnights\n")
    return stack.env() | {
        "MLSERVICE_CONFIG": str(config),
        "MLSERVICE_BIND": f"127.0.0.1:{free_port()}",
    }, config


@pytest.mark.parametrize("argv", [GUNICORN, WORKER], ids=["gunicorn", "celery"])
def test_bad_time_unit_stops_start(argv, bad_unit_env):
    env, config = bad_unit_env
    result = start(argv, env)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"{config}: [auth_info] expiry_time_unit = 'fortnights' is not allowed" in output
    assert "days, seconds, microseconds, milliseconds, minutes, hours, weeks" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("argv", [GUNICORN, WORKER], ids=["gunicorn", "celery"])
def test_wrong_redis_password_stops_start(argv, stack):
    env = stack.env() | {
        "MLSERVICE_REDIS_MASTER_PW": "definitely-wrong",
        "MLSERVICE_BIND": f"127.0.0.1:{free_port()}",
    }
    result = start(argv, env)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "refused user" in output and "wrong password" in output
    assert "Traceback" not in output


def test_check_config_command(stack, bad_unit_env):
    ok = start([sys.executable, "-m", "mlservice", "check-config"], stack.env())
    assert ok.returncode == 0 and "configuration OK" in ok.stdout
    env, _ = bad_unit_env
    bad = start([sys.executable, "-m", "mlservice", "check-config"], env)
    assert bad.returncode != 0 and "fortnights" in bad.stderr


@pytest.mark.parametrize("argv", [GUNICORN, WORKER], ids=["gunicorn", "celery"])
def test_bad_default_model_stops_start(argv, stack, tmp_path):
    config = tmp_path / "config.properties"
    config.write_text(
        "[auth_info]\nexpiry = 3\nexpiry_time_unit = days\n"
        '[default_model]\nestimator = LogisticRegression\nparams = {"C": -1}\n'
    )
    env = stack.env() | {
        "MLSERVICE_CONFIG": str(config),
        "MLSERVICE_BIND": f"127.0.0.1:{free_port()}",
    }
    result = start(argv, env)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"{config}: [default_model] The 'C' parameter of LogisticRegression" in output
    assert "Traceback" not in output


def test_bad_probabilities_flag_is_400_before_anything_else(client, admin_token):
    response = client.post("/resource/predict?probabilities=perhaps", admin_token, json={})
    assert response.status_code == 400
    assert "probabilities" in response.json()["status"]


MLSERVICE = [sys.executable, "-m", "mlservice"]


@pytest.mark.parametrize(
    "command",
    [["users", "list"], ["users", "delete", "ann"], ["check-config"]],
    ids=" ".join,
)
def test_cli_without_redis_says_where_it_looked_in_one_line(stack, command):
    """Redis on another port than the settings say: one line naming host, port and setting."""
    closed = free_port()
    result = start(MLSERVICE + command, stack.env() | {"MLSERVICE_REDIS_PORT": str(closed)})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"Error: cannot reach Redis at 127.0.0.1:{closed} (HOST and PORT in "
    )
    assert "or MLSERVICE_REDIS_HOST / MLSERVICE_REDIS_PORT): Error 111 connecting" in lines[0]


def test_cli_users_add_under_a_terminal_without_redis(stack):
    """As typed by a person: the password prompts, then the same one line, no traceback."""
    closed = free_port()
    child = pexpect.spawn(
        MLSERVICE[0],
        MLSERVICE[1:] + ["users", "add", "ann"],
        env=stack.env() | {"MLSERVICE_REDIS_PORT": str(closed)},
        encoding="utf-8",
        timeout=30,
    )
    child.expect("Password: ")
    child.sendline("a-long-password")
    child.expect("Repeat for confirmation: ")
    child.sendline("a-long-password")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    output = child.before.strip().splitlines()
    assert output[-1].startswith(f"Error: cannot reach Redis at 127.0.0.1:{closed} ")
    assert "Traceback" not in child.before
