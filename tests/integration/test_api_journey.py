"""The docs' HTTP journey and the README's example run as a newcomer would paste them.

Every ``sh`` block between the ``journey`` markers of docs/api-journey.md runs,
in order, in one bash at the repository's root, against the real stack; so
does the README's five-line example (which docs/index.md repeats word for
word). Only make run's address and the admin password are pointed at the test
stack. ``curl`` fails on any 4xx or 5xx (``--fail-with-body``), so a command
that stopped working stops the script and fails the test.
"""

import re
import subprocess

import pytest

from mlservice.config import REPO_DIR

JOURNEY_PAGE = REPO_DIR / "docs" / "api-journey.md"
URL = "http://127.0.0.1:8880"
PASSWORD = "$(cat var/admin-password)"
# Every curl the docs run fails on an HTTP error, and says which.
STRICT = 'set -euo pipefail\ncurl() { command curl --fail-with-body --show-error "$@"; }\n'


def sh_blocks(path, start_marker: str, end_marker: str) -> list[str]:
    """The sh blocks of a Markdown file between two markers, in order."""
    text = path.read_text()
    start = text.index(start_marker)
    end = text.index(end_marker, start)
    return re.findall(r"```sh\n(.*?)```", text[start:end], flags=re.DOTALL)


def journey() -> str:
    """The docs' journey: its sh blocks between the markers, joined."""
    blocks = sh_blocks(JOURNEY_PAGE, "<!-- journey:", "<!-- ...to here. -->")
    assert len(blocks) >= 10, "the journey markers lost their sh blocks"
    return "\n".join(blocks)


def example(path) -> str:
    """The five-line example: the one sh block after the ``example`` marker."""
    blocks = sh_blocks(path, "<!-- example:", "\n## ")
    assert len(blocks) == 1, f"{path.name}: the example marker should precede one sh block"
    return blocks[0]


def run_against(stack, admin_credentials, script: str) -> str:
    """Run ``script`` in bash at the repository's root against the test stack; its output."""
    assert f"URL={URL}" in script and PASSWORD in script
    script = script.replace(f"URL={URL}", f"URL={stack.url}").replace(
        PASSWORD, admin_credentials[1]
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
        pytest.fail(f"the docs' commands hung: {exc.stdout!r} {exc.stderr!r}")
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr}"
    return result.stdout


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
    output = run_against(stack, admin_credentials, journey())
    assert '"predictions":["setosa"]' in output.replace(" ", "")
    assert '"predictions":["premium","basic"]' in output.replace(" ", "")
    assert output.count("204\n") >= 4  # the synchronous init, and three deletions


def test_readme_example_is_the_overview_page_example():
    """One example, shown twice (GitHub's landing page and the site's): never two versions."""
    assert example(REPO_DIR / "README.md") == example(REPO_DIR / "docs" / "index.md")


def test_readme_example_runs_against_the_stack(stack, admin_credentials):
    script = example(REPO_DIR / "README.md")
    assert len(script.rstrip("\n").split("\n")) <= 8, "the example is meant to stay short"
    shown = script.rstrip("\n").split("\n")[-1]  # the answer the example shows, as a comment
    assert shown == '# {"predictions":["premium"]}'
    assert run_against(stack, admin_credentials, script) == shown.removeprefix("# ")
