"""docs/v2.md runs as a newcomer would paste it, against the real stack: its ``sh`` blocks
between the ``v2`` markers in one bash (``curl`` failing on any 4xx or 5xx), then its
``tritonclient.http`` block in Python, with the token the shell got."""

import os
import re
import subprocess
import sys

from mlservice.config import REPO_DIR
from tests.integration.test_api_journey import run_against, sh_blocks

PAGE = REPO_DIR / "docs" / "v2.md"


def python_block() -> str:
    text = PAGE.read_text()
    start = text.index("<!-- v2-python:")
    return re.findall(r"```python\n(.*?)```", text[start:], flags=re.DOTALL)[0]


def test_the_v2_page_runs_against_the_stack(stack, admin_credentials, admin_token):
    blocks = sh_blocks(PAGE, "<!-- v2:", "<!-- ...to here. -->")
    assert len(blocks) >= 4, "the v2 markers lost their sh blocks"
    output = run_against(stack, admin_credentials, "\n".join(blocks))
    assert '{"live":true,"ready":true}' in output
    assert '"model_name":"upgrades","model_version":"1","id":"42"' in output
    assert '"data":["setosa","virginica"]' in output
    script = python_block().replace("127.0.0.1:8880", stack.url.removeprefix("http://"))
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=os.environ | {"TOKEN": admin_token},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("[{'name': 'age', 'datatype': 'FP64', 'shape': [-1]}")
    assert lines[1] == "[b'premium' b'basic']"
