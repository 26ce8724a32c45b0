"""The package's shape holds: no import cycles, domain code without Flask, no work on import."""

import ast
import subprocess
import sys
from pathlib import Path

import mlservice

PACKAGE = Path(mlservice.__file__).parent
DOMAIN = ("serving", "training", "store")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The modules ``path`` imports at module level (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_no_module_imports_itself_back():
    edges = graph()
    assert len(edges) > 40, "the walk found the package's modules"

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges[start]:
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = [name for name in edges if reaches(name, name, {name})]
    assert cycles == []


def test_sub_packages_depend_one_way():
    """api -> training -> serving -> store: never back (the platform sits under them all)."""
    order = ["store", "serving", "training", "api"]
    backwards = []
    for name, targets in graph().items():
        part = name.split(".")[1] if name.count(".") >= 2 else None
        for target in targets:
            other = target.split(".")[1] if target.count(".") >= 2 else None
            if part in order and other in order and order.index(other) > order.index(part):
                backwards.append(f"{name} -> {target}")
    assert backwards == []


def test_no_two_modules_share_a_name():
    """A reader never has to guess which of two ``models.py`` files to open."""
    names = [path.name for path in PACKAGE.rglob("*.py") if path.name != "__init__.py"]
    assert sorted({name for name in names if names.count(name) > 1}) == []


def test_domain_code_knows_nothing_of_flask():
    flask_users = [
        str(path.relative_to(PACKAGE))
        for part in DOMAIN
        for path in (PACKAGE / part).rglob("*.py")
        if any(m.split(".")[0] in ("flask", "werkzeug") for m in imports(path))
    ]
    assert flask_users == []


def test_importing_the_celery_app_reads_no_configuration(tmp_path):
    missing = tmp_path / "nowhere.properties"
    env = {
        "MLSERVICE_CONFIG": str(missing),
        "MLSERVICE_REDIS_CONFIG": str(missing),
        "PATH": "/usr/bin:/bin",
    }
    code = "import mlservice.celery_app, mlservice.app, mlservice.tasks.training_tasks; print('ok')"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
