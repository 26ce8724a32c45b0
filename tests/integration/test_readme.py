"""The README's HTTP journey runs top to bottom, as a newcomer would paste it.

Every ``sh`` block between the README's ``journey`` markers runs, in order, in
one bash at the repository's root, against the real stack. Only the two
lines that name make run's address and admin password are pointed at the
test stack. ``curl`` fails on any 4xx or 5xx (``--fail-with-body``), so a
command that stopped working stops the script and fails the test.
"""

import re
import subprocess

import pytest

from mlservice.config import REPO_DIR

README = (REPO_DIR / "README.md").read_text()
URL_LINE = "URL=http://127.0.0.1:8880"
PASSWORD_LINE = "ADMIN_PASSWORD=$(cat var/admin-password)"
# Every curl the README runs fails on an HTTP error, and says which.
STRICT = 'set -euo pipefail\ncurl() { command curl --fail-with-body --show-error "$@"; }\n'


def journey() -> str:
    """The README's journey: its sh blocks between the markers, joined."""
    start = README.index("<!-- journey:")
    end = README.index("<!-- ...to here. -->")
    blocks = re.findall(r"```sh\n(.*?)```", README[start:end], flags=re.DOTALL)
    assert len(blocks) >= 10, "the journey markers lost their sh blocks"
    return "\n".join(blocks)


def test_journey_sets_every_variable_before_use():
    """URL, ADMIN_PASSWORD, TOKEN, TASK, DATASET and MODEL each set by an earlier line."""
    script = journey()
    for name in ("URL", "ADMIN_PASSWORD", "TOKEN", "TASK", "DATASET", "MODEL"):
        assigned = script.index(f"{name}=")
        used = re.search(rf"\${name}\b", script)
        assert used is not None and assigned < used.start(), name
    used = set(re.findall(r"\$([A-Z_]+)", script))
    assert used == {"URL", "ADMIN_PASSWORD", "TOKEN", "TASK", "DATASET", "MODEL"}


def test_journey_runs_against_the_stack(stack, admin_credentials):
    script = journey()
    assert URL_LINE in script and PASSWORD_LINE in script
    script = script.replace(URL_LINE, f"URL={stack.url}").replace(
        PASSWORD_LINE, f"ADMIN_PASSWORD={admin_credentials[1]}"
    )
    try:
        result = subprocess.run(
            ["bash", "-c", STRICT + script],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the README journey hung: {exc.stdout!r} {exc.stderr!r}")
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr}"
    output = result.stdout
    assert '"predictions":["setosa"]' in output.replace(" ", "")
    assert '"predictions":["premium","basic"]' in output.replace(" ", "")
    assert output.count("204\n") >= 4  # the synchronous init, and three deletions
