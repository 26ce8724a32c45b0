"""docs/registry.md's "Step by step" runs as a newcomer would paste it, against the real stack.

Its ``sh`` blocks between the ``registry`` markers run in order in one bash at
the repository's root, as the HTTP journey's do (tests/integration/test_api_journey.py):
``curl`` fails on any 4xx or 5xx, so a command that stopped working fails the test.
"""

from mlservice.config import REPO_DIR
from tests.integration.test_api_journey import run_against, sh_blocks

PAGE = REPO_DIR / "docs" / "registry.md"


def test_the_registry_page_runs_against_the_stack(stack, admin_credentials):
    blocks = sh_blocks(PAGE, "<!-- registry:", "<!-- ...to here. -->")
    assert len(blocks) >= 6, "the registry markers lost their sh blocks"
    output = run_against(stack, admin_credentials, "\n".join(blocks))
    assert "X-Registry-Version: 1" in output
    assert "'requests_compared': 1" in output
    assert '"event":"alias_moved"' in output.replace(" ", "")
