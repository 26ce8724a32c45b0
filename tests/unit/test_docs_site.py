"""The documentation site builds with no warning, and a broken link or a stray page breaks it.

``make docs`` runs ``mkdocs build --strict``; mkdocs.yml's ``validation`` makes
a page missing from the nav, a link to a missing page and a link to a missing
heading warnings, so strict mode fails on each. These tests build the real
pages into a temporary directory, then a copy with one of each fault, so that
the check itself is known to bite. The README, which GitHub shows and MkDocs
does not build, has its relative links checked here.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from mlservice.config import REPO_DIR

DOCS_DIR = REPO_DIR / "docs"
CONFIG = REPO_DIR / "mkdocs.yml"


def build(config: Path, site_dir: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of ``config`` into ``site_dir``, as ``make docs`` runs it."""
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config)]
        + ["--site-dir", str(site_dir)],
        capture_output=True,
        text=True,
        env=os.environ | {"NO_MKDOCS_2_WARNING": "1"},
        timeout=120,
    )


def nav_pages(nav: list) -> list[str]:
    """Every page file the nav names, at any depth."""
    pages: list[str] = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_site_builds_with_no_warning(tmp_path):
    result = build(CONFIG, tmp_path / "site")
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    built = sorted(p.relative_to(tmp_path / "site") for p in (tmp_path / "site").rglob("*.html"))
    assert Path("index.html") in built and Path("api-journey/index.html") in built


def test_every_page_is_in_the_nav_once():
    config = yaml.safe_load(CONFIG.read_text())
    listed = nav_pages(config["nav"])
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(p.name for p in DOCS_DIR.glob("*.md"))


def test_strict_build_fails_on_a_stray_page_a_dead_link_and_a_dead_anchor(tmp_path):
    shutil.copy(CONFIG, tmp_path / "mkdocs.yml")
    shutil.copytree(DOCS_DIR, tmp_path / "docs")
    (tmp_path / "docs" / "stray.md").write_text("# Not in the nav\n")
    with (tmp_path / "docs" / "index.md").open("a") as page:
        page.write("\n[gone](no-such-page.md) and [no heading](deployment.md#no-such-heading)\n")
    result = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "Aborted with 3 warnings in strict mode!" in result.stdout + result.stderr
    assert "stray.md" in result.stderr
    assert "no-such-page.md" in result.stderr
    assert "#no-such-heading" in result.stderr


def test_readme_relative_links_resolve():
    """Every relative link of the README names a file of the repository (GitHub renders them)."""
    readme = (REPO_DIR / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    relative = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert "docs/api-journey.md" in relative
    assert [t for t in relative if not (REPO_DIR / t).is_file()] == []
