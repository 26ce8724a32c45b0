"""The web console's files: its documented ``data-testid``s exist, and it renders only text.

Others automate the console by its ``data-testid`` attributes (docs/console.md
lists them, the README names the main ones), so a test id renamed in the
scripts without the docs, or documented but gone, fails here. The scripts
must never put data into the page as HTML: no ``innerHTML``, ``outerHTML``,
``insertAdjacentHTML`` or ``document.write``, and no ``localStorage``.
"""

from __future__ import annotations

import re

from mlservice.config import REPO_DIR
from mlservice.console import MEDIA_TYPES, STATIC_DIR

DOCS = REPO_DIR / "docs" / "console.md"
README = REPO_DIR / "README.md"
#: Test ids made from a prefix and a value (documented as ``prefix<...>``).
PATTERNS = {"param-", "sort-", "try-input-"}
#: Made by helpers from a given id: a table's "-empty" line, a progress bar's "-text".
SUFFIXES = ("-empty", "-text")


def _sources() -> str:
    return "\n".join(path.read_text() for path in sorted(STATIC_DIR.iterdir()) if path.is_file())


def _in_sources() -> set[str]:
    """Every literal test id of the scripts and the page."""
    text = _sources()
    ids = set(re.findall(r'testid: "([a-z0-9-]+)"', text))
    ids |= set(re.findall(r'data-testid="([a-z0-9-]+)"', text))
    ids |= set(re.findall(r'rowTestid: \(\) => "([a-z0-9-]+)"', text))
    ids |= set(re.findall(r'progress\("([a-z0-9-]+)"\)', text))
    ids |= set(re.findall(r'dataset\.testid = "([a-z0-9-]+)"', text))
    return {name for name in ids if not name.endswith("-")}  # prefixes: PATTERNS


def _documented() -> set[str]:
    """The test ids docs/console.md lists (its "Automating it" section's table)."""
    section = DOCS.read_text().split("## Automating it", 1)[1].split("\n## ", 1)[0]
    rows = "\n".join(line.split("|")[2] for line in section.splitlines() if line.startswith("| "))
    return set(re.findall(r"`([a-z][a-z0-9-]*(?:<[a-z]+>)?)`", rows)) - {"data-testid"}


def _exists(name: str, ids: set[str]) -> bool:
    if "<" in name:
        return name.split("<")[0] in PATTERNS
    if any(name.startswith(prefix) for prefix in PATTERNS):  # an example, e.g. sort-name
        return True
    return name in ids or any(
        name.endswith(suffix) and name[: -len(suffix)] in ids for suffix in SUFFIXES
    )


def test_every_documented_test_id_is_in_the_console():
    ids = _in_sources()
    documented = _documented()
    assert len(documented) > 100
    assert sorted(name for name in documented if not _exists(name, ids)) == []


def test_every_test_id_of_the_console_is_documented():
    documented = _documented()
    assert sorted(_in_sources() - documented) == []
    for prefix in PATTERNS:
        assert any(name.startswith(prefix + "<") for name in documented), prefix


def test_the_readme_names_only_real_test_ids():
    section = README.read_text().split("## The web console", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([a-z][a-z0-9-]*(?:<[a-z]+>)?)`", section)) - {"data-testid"}
    assert len(named) >= 20
    ids = _in_sources()
    assert sorted(name for name in named if not _exists(name, ids)) == []


def test_the_scripts_never_write_html_nor_use_local_storage():
    code = (path.read_text() for path in sorted(STATIC_DIR.glob("*.js")))
    text = re.sub(r"^\s*//.*$", "", "\n".join(code), flags=re.M)  # the code, not its comments
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert forbidden not in text, forbidden
    assert "localStorage" not in text
    assert "sessionStorage" in text


def test_the_page_has_no_inline_script_or_style():
    page = (STATIC_DIR / "index.html").read_text()
    assert re.findall(r"<script[^>]*>", page) == ['<script type="module" src="/ui/assets/app.js">']
    assert "<style" not in page and " style=" not in page
    # Handler attributes (onclick=...) would need 'unsafe-inline'.
    assert not re.search(r"<[^>]+\son[a-z]+=", page)


def test_every_file_is_a_type_the_blueprint_serves():
    for path in STATIC_DIR.iterdir():
        assert path.name == "index.html" or path.suffix in MEDIA_TYPES, path.name
