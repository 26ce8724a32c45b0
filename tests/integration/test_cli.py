"""``mls`` under a pseudo-terminal (pexpect) against the real stack.

HOME and XDG_CONFIG_HOME point into a temporary directory, so the tests
never read or write a developer's own saved login.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from mlservice_client import Client, formatting
from tests.helpers import write_over_limit

MLS = str(Path(sys.executable).with_name("mls"))

#: tqdm's bytes bar once finished: "4.88M/4.88M [00:01<00:00, 3.52MB/s]" (size, time, ETA, rate).
BYTES_BAR = re.compile(
    r"100%\|[^|]*\| [\d.]+[kMG]?/[\d.]+[kMG]? \[\d\d:\d\d<\d\d:\d\d, +[\d.]+[kMG]?B/s\]"
)


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def run(home):
    """Run ``mls`` in a pseudo-terminal; (exit status, output with CR/LF normalised)."""

    def mls(
        *args: str, env: dict[str, str] | None = None, answers: tuple[tuple[str, str], ...] = ()
    ) -> tuple[int, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("MLS_")}
        base |= {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "COLUMNS": "120"}
        child = pexpect.spawn(
            MLS,
            list(args),
            env=base | (env or {}),
            encoding="utf-8",
            timeout=300,
            dimensions=(40, 120),
        )
        for prompt, reply in answers:
            child.expect(prompt)
            child.sendline(reply)
        child.expect(pexpect.EOF)
        child.close()
        output = (child.before or "").replace("\r\n", "\n")  # after the last prompt
        return child.exitstatus, output

    return mls


@pytest.fixture
def account(new_user):
    """A fresh user: (name, password, token)."""
    return new_user()


@pytest.fixture
def as_user(stack, account) -> dict[str, str]:
    """The environment that makes ``mls`` talk to the stack as that user (no login file)."""
    return {"MLS_URL": stack.url, "MLS_TOKEN": account[2]}


@pytest.fixture
def customers_csv(customers, tmp_path) -> Path:
    path = tmp_path / "customers.csv"
    customers.to_csv(path, index=False)
    return path


@pytest.fixture
def dataset_id(stack, account, customers_csv) -> str:
    return Client(stack.url, token=account[2]).upload_dataset(customers_csv)["id"]


def test_login_keeps_the_token_readable_by_its_owner_only(stack, run, home, account):
    name, password, _ = account
    status, output = run("login", stack.url, "-u", name, answers=(("Password: ", password),))
    assert status == 0, output
    assert f"Logged in to {stack.url} as {name}" in output
    saved = home / ".config" / "mlservice" / "credentials.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    kept = json.loads(saved.read_text())
    assert (kept["url"], kept["username"]) == (stack.url, name)
    # The saved token works for the next command; MLS_TOKEN overrides it.
    status, output = run("datasets", "ls", "--json")
    assert status == 0, output
    assert json.loads(output)["total"] == 0
    status, output = run("datasets", "ls", env={"MLS_TOKEN": "not-a-token"})
    assert status == 1


def test_upload_shows_bytes_rate_and_time_left(stack, run, as_user, tmp_path):
    path = tmp_path / "wide.csv"
    rows = "".join(f"{i},{i * 0.25},c{i % 7},{'yes' if i % 2 else 'no'}\n" for i in range(200_000))
    path.write_text("id,value,city,label\n" + rows)
    status, output = run("datasets", "upload", str(path), env=as_user)
    assert status == 0, output
    assert "uploading wide.csv: " in output
    assert BYTES_BAR.search(output), output
    assert re.search(r"^\w{32}\s+wide\.csv\s+user\S*\s+csv\s+ready\s+200000\s", output, re.M)
    assert "profiling" not in output  # profiled in the request: 201, nothing to wait for


# -- uploads over the stack's [service] inline_profile_mb: profiled by a worker ---------------

#: The line a large file that fails profiling ends with.
RAGGED = "1,2,3,4,5"


@pytest.fixture(scope="module")
def large_csv(tmp_path_factory, settings) -> tuple[Path, int]:
    """A good CSV a bit over the stack's inline_profile_mb (16 MiB: about 17 MB) and its rows."""
    path = tmp_path_factory.mktemp("large") / "large.csv"
    return path, write_over_limit(path, settings.service.inline_profile_bytes)


@pytest.fixture(scope="module")
def ragged_csv(tmp_path_factory, settings) -> tuple[Path, str]:
    """The same, ending with a ragged line; the error its profile fails with."""
    path = tmp_path_factory.mktemp("ragged") / "ragged.csv"
    rows = write_over_limit(path, settings.service.inline_profile_bytes, RAGGED + "\n")
    # The message a file under the limit gets as 422 (the header is line 1).
    return (
        path,
        f"ragged rows: row {rows} has 5 fields where the header has 4; give every row one "
        "value per column, and quote text that holds the delimiter ','",
    )


def test_a_large_upload_shows_profiling_then_the_profile(run, as_user, large_csv):
    path, rows = large_csv
    size = re.escape(formatting.size(path.stat().st_size))
    status, output = run("datasets", "upload", str(path), env=as_user)
    print("\n" + output)
    assert status == 0, output
    assert BYTES_BAR.search(output), output
    stored = re.search(
        rf"^Data set (\w{{32}}): large\.csv, stored; profiling {size} in a worker$", output, re.M
    )
    assert stored, output
    # The status line ends on the outcome; before it, the upload's answer said profiling.
    settled = re.search(r"profiling large\.csv: \d\d:\d\d, ready\s*$", output, re.M)
    assert settled and settled.start() > stored.end(), output
    profile = re.search(
        rf"^{stored[1]}\s+large\.csv\s+user\S*\s+csv\s+ready\s+{rows}\s+4\s+{size}\s",
        output,
        re.M,
    )
    assert profile and profile.start() > settled.end(), output
    assert re.search(
        r"^city\s+string\s+categorical\s+0\s+7\s+city0, city1, city2, city3, city4$", output, re.M
    )
    assert re.search(r"^label\s+string\s+categorical\s+0\s+2\s+no, yes$", output, re.M), output

    status, output = run("datasets", "ls", env=as_user)
    assert status == 0, output
    assert re.search(rf"^{stored[1]}\s+large\.csv\s+\S+\s+csv\s+ready\s+{rows}\s+4\s", output, re.M)


def test_a_large_upload_that_fails_profiling_shows_the_error_and_exits_1(run, as_user, ragged_csv):
    path, error = ragged_csv
    status, output = run("datasets", "upload", str(path), env=as_user)
    print("\n" + output)
    assert status == 1, output
    stored = re.search(r"^Data set (\w{32}): ragged\.csv, stored; profiling", output, re.M)
    assert stored, output
    dataset_id = stored[1]
    assert re.search(r"profiling ragged\.csv: \d\d:\d\d, failed\s*$", output, re.M), output
    assert output.splitlines()[-1] == (
        f"mls: data set {dataset_id!r} (ragged.csv) failed profiling: {error}; "
        f"fix the file and upload it again ('mls datasets rm {dataset_id}' deletes this record)"
    )

    status, output = run("datasets", "show", dataset_id, env=as_user)
    assert status == 0, output
    assert re.search(rf"^{dataset_id}\s+ragged\.csv\s+\S+\s+csv\s+failed\s+-\s+-\s", output, re.M)
    assert output.strip().endswith(f"error: {error}"), output
    status, output = run("datasets", "ls", env=as_user)
    assert status == 0, output
    assert re.search(rf"^{dataset_id}\s+ragged\.csv\s+\S+\s+csv\s+failed\s+-\s+-\s", output, re.M)


def test_no_wait_answers_at_once_and_wait_prints_the_final_record(stack, as_user, home, ragged_csv):
    """For scripts (no terminal): --no-wait gives the profiling record; ``datasets wait --json``
    the final one, failed, on stdout, and the error on stderr with exit code 1."""
    path, error = ragged_csv
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLS_")} | as_user
    env |= {"HOME": str(home)}

    def mls(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([MLS, *args], capture_output=True, text=True, env=env, timeout=300)

    uploaded = mls("datasets", "upload", str(path), "--no-wait", "--json")
    assert uploaded.returncode == 0, uploaded.stderr
    record = json.loads(uploaded.stdout)
    assert (record["name"], record["status"]) == ("ragged.csv", "profiling")
    assert record["status_url"] == f"/resource/task/status/{record['task_id']}"
    assert not {"rows", "columns", "error"} & set(record)
    assert uploaded.stderr == (
        f"Data set {record['id']}: ragged.csv, stored; profiling "
        f"{formatting.size(path.stat().st_size)} in a worker\n"
    )

    waited = mls("datasets", "wait", record["id"], "--json")
    assert waited.returncode == 1, waited.stderr
    final = json.loads(waited.stdout)
    assert (final["id"], final["status"], final["error"]) == (record["id"], "failed", error)
    assert "rows" not in final
    assert waited.stderr.startswith(f"mls: data set {record['id']!r} (ragged.csv) failed profiling")


def test_no_progress_bar_when_stderr_is_not_a_terminal(stack, as_user, customers_csv, home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLS_")} | as_user
    done = subprocess.run(
        [MLS, "datasets", "upload", str(customers_csv), "--json"],
        capture_output=True,
        text=True,
        env=env | {"HOME": str(home)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)["rows"] == 400


def test_train_follows_progress_and_prints_the_metrics(run, as_user, dataset_id):
    status, output = run(
        "train",
        "--dataset",
        dataset_id,
        "--target",
        "plan",
        "--estimator",
        "RandomForestClassifier",
        "--param",
        "n_estimators=30",
        "--param",
        "max_depth=6",
        "--cv",
        "3",
        env=as_user,
    )
    print("\n" + output)
    assert status == 0, output
    assert re.search(r"training: 100%\|", output), output
    assert re.search(r"^status\s+ready$", output, re.M)
    # held-out, then the training rows'
    assert re.search(r"^accuracy\s+[01]\.\d{4}\s+[01]\.\d{4}$", output, re.M), output
    assert re.search(r"^cv accuracy\s+[01]\.\d{4} ± 0\.\d{4} \(3 folds\)$", output, re.M)
    assert "confusion matrix (rows: true class, columns: predicted)" in output


def test_a_failed_training_exits_3(run, as_user, stack, account, customers, tmp_path):
    path = tmp_path / "small.csv"
    customers.head(30).to_csv(path, index=False)
    small = Client(stack.url, token=account[2]).upload_dataset(path)["id"]
    status, output = run(
        "train",
        *("--dataset", small, "--target", "plan", "--estimator", "LogisticRegression"),
        *("--feature", "age", "--feature", "city", "--cv", "20"),
        env=as_user,
    )
    assert status == 3, output
    assert re.search(r"^mls: training failed: .*n_splits=20", output, re.M), output


def _one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


def test_errors_are_one_line_with_the_services_message(run, as_user, dataset_id):
    status, output = run("datasets", "ls", env=as_user | {"MLS_TOKEN": "not-a-token"})
    assert status == 1
    assert _one_line(output).startswith("mls: ") and "(HTTP 401)" in output
    assert output.strip().endswith("run 'mls login URL' for a new token")

    missing = "0" * 32
    status, output = run("models", "show", missing, env=as_user)
    assert status == 1
    assert _one_line(output) == f"mls: no model {missing!r} (HTTP 404)"

    status, output = run(
        "train",
        *("--dataset", dataset_id, "--target", "plan", "--estimator", "NoSuchForest"),
        env=as_user,
    )
    assert status == 1
    assert re.fullmatch(r"mls: .*NoSuchForest.* \(HTTP 422\)", _one_line(output))


def test_usage_and_connection_errors_have_their_own_exit_codes(run, stack):
    status, output = run("train", env={"MLS_URL": stack.url, "MLS_TOKEN": "x"})
    assert status == 2 and "Missing option '--dataset'" in output
    status, output = run("datasets", "ls")
    assert status == 2
    assert (
        _one_line(output)
        == "mls: no service: run 'mls login URL' first, or set MLS_URL and MLS_TOKEN"
    )
    status, output = run("datasets", "ls", env={"MLS_URL": "http://127.0.0.1:1", "MLS_TOKEN": "x"})
    assert status == 4
    assert _one_line(output) == (
        "mls: cannot reach the service at http://127.0.0.1:1: connection refused or lost"
    )


def test_json_output_parses(run, as_user, dataset_id):
    status, output = run("--json", "datasets", "show", dataset_id, env=as_user)
    assert status == 0
    record = json.loads(output)
    assert (record["id"], record["rows"]) == (dataset_id, 400)
    status, output = run("estimators", "--json", env=as_user)
    assert status == 0
    assert "RandomForestClassifier" in {e["name"] for e in json.loads(output)}


def test_predict_a_csv_file_to_stdout(
    stack, run, as_user, account, dataset_id, customers, tmp_path
):
    client = Client(stack.url, token=account[2])
    model = client.train(dataset_id, "plan", "LogisticRegression", {"max_iter": 500}, wait=True)
    path = tmp_path / "new.csv"
    customers[["age", "city", "income"]].head(25).to_csv(path, index=False)
    expected = client.predict(path, model=model["id"], probabilities=True)

    status, output = run("predict", model["id"], str(path), env=as_user)
    assert status == 0, output
    assert output.splitlines() == ["prediction", *map(str, expected["predictions"])]

    status, output = run("predict", model["id"], str(path), "--probabilities", env=as_user)
    assert status == 0, output
    header, *rows = output.splitlines()
    labels = list(expected["probabilities"][0])
    assert header == ",".join(["prediction", *(f"probability_{label}" for label in labels)])
    assert [row.split(",")[0] for row in rows] == expected["predictions"]

    out = tmp_path / "answers.json"
    status, output = run("predict", model["id"], str(path), "-o", str(out), env=as_user)
    assert status == 0, output
    assert json.loads(out.read_text()) == {"predictions": expected["predictions"]}

    # A test file that still has its target: the answers are the same, the column is named.
    with_target = tmp_path / "labelled.csv"
    customers[["age", "city", "income", "plan"]].head(25).to_csv(with_target, index=False)
    status, output = run("predict", model["id"], str(with_target), "-o", str(out), env=as_user)
    assert status == 0, output
    assert json.loads(out.read_text()) == {"predictions": expected["predictions"]}
    assert output.strip() == (
        "Ignored column(s) the model does not take: plan (--refuse-extra-columns to refuse them)"
    )

    status, output = run(
        "models", "report", model["id"], "-o", str(tmp_path / "report"), env=as_user
    )
    assert status == 0, output
    saved = {Path(line).name for line in output.splitlines()}
    assert {"metrics.json", "confusion_matrix.png", "confusion_matrix.svg"} <= saved
    assert (tmp_path / "report" / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["accuracy"] == client.model(model["id"])["metrics"]["accuracy"]


# -- the registry -----------------------------------------------------------------------------


def test_registry_create_promote_predict_by_alias_and_history(
    stack, run, as_user, account, dataset_id, customers, tmp_path
):
    client = Client(stack.url, token=account[2])
    model = client.train(dataset_id, "plan", "LogisticRegression", {"max_iter": 500}, wait=True)
    name = f"cli-{account[0]}"
    status, output = run(
        "registry", "create", name, "--description", "churn", "--tag", "team=risk", env=as_user
    )
    assert status == 0, output
    assert re.search(rf"^name\s+{name}$", output, re.M), output
    assert re.search(r"^tags\s+team=risk$", output, re.M), output
    status, output = run("registry", "add", name, model["id"], env=as_user)
    assert (status, output.strip()) == (0, f"{name} version 1: model {model['id']}")
    status, output = run("registry", "promote", name, "1", "--alias", "production", env=as_user)
    assert (status, output.strip()) == (0, f"{name}@production -> 1")

    path = tmp_path / "new.csv"
    customers[["age", "city", "income"]].head(25).to_csv(path, index=False)
    expected = client.predict(path, model=model["id"])
    status, output = run("predict", f"{name}@production", str(path), env=as_user)
    assert status == 0, output
    assert output.splitlines() == ["prediction", *map(str, expected["predictions"])]
    status, output = run("predict", f"{name}@1", str(path), env=as_user)
    assert output.splitlines() == ["prediction", *map(str, expected["predictions"])]

    status, output = run("registry", "list", env=as_user)
    assert status == 0 and re.search(rf"^{name}\s+{account[0]}\s+1\s+churn\s", output, re.M), output
    status, output = run("registry", "show", name, env=as_user)
    assert status == 0, output
    assert re.search(
        rf"^\s*1\s+{model['id']}\s+LogisticRegression\s+\S+\s+production\s", output, re.M
    )
    assert re.search(r"^production\s+1\s+" + account[0], output, re.M), output
    status, output = run("registry", "history", name, env=as_user)
    assert status == 0, output
    events = [line.split()[3] for line in output.splitlines()[1:]]  # WHEN is a date and a time
    assert events == ["created", "version_added", "alias_set"], output
    assert f"version 1: model {model['id']}" in output and "production: - -> 1" in output
    status, output = run("registry", "history", name, "--json", env=as_user)
    assert [entry["event"] for entry in json.loads(output)] == events

    status, output = run("predict", f"{name}@staging", str(path), env=as_user)
    assert status == 1
    assert output.strip() == f"mls: registered model {name!r} has no alias 'staging' (HTTP 404)"


def test_search_run_draws_a_live_leaderboard_then_the_final_one(run, as_user, dataset_id):
    status, output = run(
        "search",
        "run",
        "--dataset",
        dataset_id,
        "--target",
        "plan",
        "--feature",
        "age",
        "--feature",
        "city",
        "--estimator",
        "LogisticRegression",
        "--space",
        "C=[0.01, 0.1, 1, 10]",
        "--space",
        "max_iter=[1000]",
        "--strategy",
        "grid",
        "--cv",
        "3",
        env=as_user,
    )
    print("\n" + output)
    assert status == 0, output
    assert "\x1b[J" in output  # drawn again in place as trials ended
    assert re.search(r"^search [0-9a-f]{32}: (queued|running)", output, re.M)
    assert re.search(r"^status\s+done$", output, re.M)
    assert re.search(r"^trials\s+done - 4/4 done, 0 running, 0 failed", output, re.M)
    final = output.rsplit("# ", 1)[1].splitlines()
    assert final[0].split()[:3] == ["TRIAL", "ESTIMATOR", "PARAMS"]
    assert [line.split()[0] for line in final[1:5]] == ["1", "2", "3", "4"]


def test_search_json_is_the_services_record_and_a_cancelled_one_exits_3(
    stack, as_user, home, dataset_id
):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLS_")} | as_user
    env |= {"HOME": str(home)}
    done = subprocess.run(
        [MLS, "search", "run", "--dataset", dataset_id, "--target", "plan", "--estimator",
         "LogisticRegression", "--space", "C=float:0.01:10:log", "--max-trials", "3",
         "--random-state", "3", "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "done" and record["trials"]["done"] == 3
    assert "\x1b[" not in done.stderr  # not a terminal: no live board

    started = subprocess.run(
        [MLS, "search", "run", "--dataset", dataset_id, "--target", "income", "--estimator",
         "RandomForestRegressor", "--space", "n_estimators=int:1500:1600", "--max-trials", "8",
         "--no-wait", "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    search_id = json.loads(started.stdout)["id"]
    cancelled = subprocess.run(
        [MLS, "search", "cancel", search_id, "--json"], capture_output=True, text=True, env=env,
        timeout=120,
    )  # fmt: skip
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["status"] == "cancelled"
    waited = subprocess.run(
        [MLS, "search", "wait", search_id], capture_output=True, text=True, env=env, timeout=120
    )
    assert waited.returncode == 3, waited.stderr
    assert waited.stderr.strip() == "mls: search cancelled: cancelled"


def test_an_admin_disables_and_enables_an_account(stack, run, admin_token, account, client):
    """``mls users set NAME --disable`` and ``--enable``: the account cannot get a token between."""
    name, password, _ = account
    as_admin = {"MLS_URL": stack.url, "MLS_TOKEN": admin_token}
    status, output = run("users", "set", name, "--disable", env=as_admin)
    assert status == 0, output
    assert f"Changed {name} (user) (disabled); earlier tokens are revoked" in output
    assert client.get("/resource/auth", auth=(name, password)).status_code == 403
    status, output = run("users", "set", name, "--enable", "--json", env=as_admin)
    assert status == 0, output
    assert json.loads(output)["disabled"] is False
    assert client.token(name, password)
