"""The package's shape holds: dependencies run one way, domain code without Flask or Celery,
no work on import, and the API free of worker code.

Every module has a layer (:data:`LAYERS`); a module may import modules of its own
group or of lower layers, never higher. Imports are read from the whole source
(also those inside functions), followed transitively, and checked again at run
time by importing each lower layer alone in a fresh interpreter.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import mlservice

PACKAGE = Path(mlservice.__file__).parent

#: group -> layer (higher layers may import lower ones, never the other way).
LAYERS = {
    "leaf": 0,  # the platform: settings, errors, Redis keys, tokens, logs, metrics, task names
    "store": 1,
    "serving": 2,
    "accounts": 2,
    "monitoring": 3,  # prediction log, drift, explanations: training stores their profile
    "training": 4,
    "registry": 4,  # beside training: neither imports the other
    "context": 5,  # the wiring
    "edge": 6,  # what starts or answers: routes, Celery tasks, the app, worker, CLI, make run
}
EDGES = {"api", "console", "tasks", "app", "worker", "cli", "stack", "preflight", "__main__"}
#: Domain packages: they know nothing of Flask, nor of Celery (only tasks/ and the wiring do).
DOMAIN = ("serving", "monitoring", "training", "registry", "store")


def group(module: str) -> str:
    """The group of ``mlservice.<part>[.<module>]``."""
    part = module.split(".")[1] if module.count(".") >= 1 else ""
    if part in EDGES:
        return "edge"
    if part in ("store", "serving", "monitoring", "training", "registry", "context", "accounts"):
        return part
    return "leaf"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _executed(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (never executed)."""
    nodes, pending = [], [tree]
    while pending:
        node = pending.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return nodes


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports when it runs, anywhere in it (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in _executed(ast.parse(path.read_text())):
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


def closure(edges: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen: set[str] = set()
    pending = [start]
    while pending:
        for target in edges[pending.pop()]:
            if target not in seen:
                seen.add(target)
                pending.append(target)
    return seen


def test_no_module_imports_itself_back():
    edges = graph()
    assert len(edges) > 60, "the walk found the package's modules"
    assert [name for name in edges if name in closure(edges, name)] == []


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    """Every (module, module it reaches through any chain of imports) that goes up a layer."""
    upward = []
    for name in sorted(edges):
        mine = group(name)
        for target in sorted(closure(edges, name)):
            theirs = group(target)
            if theirs != mine and LAYERS[theirs] >= LAYERS[mine]:
                upward.append(f"{name} ({mine}) -> {target} ({theirs})")
    return upward


def test_dependencies_run_one_way_transitively():
    """No module reaches, through any chain of imports, a module of a higher layer."""
    assert upward_imports(graph()) == []


def test_an_upward_import_through_a_chain_is_caught():
    """What slipped through before: a store module reaching the wiring through another."""
    planted = {
        "mlservice.store.a": {"mlservice.store.b"},
        "mlservice.store.b": {"mlservice.process"},
        "mlservice.process": {"mlservice.context"},
        "mlservice.context": set(),
    }
    assert upward_imports(planted) == [
        "mlservice.process (leaf) -> mlservice.context (context)",
        "mlservice.store.a (store) -> mlservice.context (context)",
        "mlservice.store.b (store) -> mlservice.context (context)",
    ]


#: layer -> what importing all of its modules at run time must not load.
RUN_TIME_LIMITS = {
    "store": ("mlservice.serving", "mlservice.training", "mlservice.context", "mlservice.accounts"),
    "serving": ("mlservice.training", "mlservice.context", "mlservice.accounts"),
    "monitoring": ("mlservice.training", "mlservice.registry", "mlservice.context"),
    "training": ("mlservice.context", "mlservice.api", "mlservice.tasks", "mlservice.registry"),
    "registry": ("mlservice.training", "mlservice.context", "mlservice.api", "mlservice.tasks"),
}


@pytest.mark.slow
def test_importing_a_layer_loads_nothing_above_it():
    """At run time too: the modules of a layer, imported in a fresh interpreter, load no
    module above it (a lazy or dynamic import counts). The layers load side by side."""
    modules = sorted(graph())
    running = {}
    for layer in RUN_TIME_LIMITS:
        names = [
            m for m in modules if m == f"mlservice.{layer}" or m.startswith(f"mlservice.{layer}.")
        ]
        code = (
            "import importlib, sys\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n"
            "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('mlservice'))))\n"
        )
        running[layer] = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
        )
    for layer, process in running.items():
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0, layer
        loaded = out.split()
        assert [name for name in loaded if name.startswith(RUN_TIME_LIMITS[layer])] == [], layer


def test_no_two_modules_share_a_name():
    """A reader never has to guess which of two ``models.py`` files to open."""
    names = [path.name for path in PACKAGE.rglob("*.py") if path.name != "__init__.py"]
    assert sorted({name for name in names if names.count(name) > 1}) == []


def test_domain_code_knows_nothing_of_flask_or_celery():
    users = [
        str(path.relative_to(PACKAGE))
        for part in DOMAIN
        for path in (PACKAGE / part).rglob("*.py")
        if any(m.split(".")[0] in ("flask", "werkzeug", "celery") for m in imports(path))
    ]
    assert users == []


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
