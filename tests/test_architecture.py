"""The import rules of the package, checked on its source (relative imports resolved):

* pure modules (sources, their shared parts, the ``[loyalty]``/``[esp]`` models, activities,
  money, errors) import only the standard library, pydantic, standardwebhooks and other pure
  modules — statically here, and at run time in a fresh interpreter;
* the web package reaches no client (``connector.http``, a vendor's ``platform``/``esp``/``pms``
  module, ``requests``), not even through the modules it imports;
* nothing imports a sandbox but the sandbox server and the CLI;
* no import cycles among module-level imports.

Each rule is also run on a small package built in the test with one violation of each kind, and
must report it.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).parent.parent

PURE_PATTERNS = (
    "connector",
    "connector.activities",
    "connector.money",
    "connector.errors",
    "connector.parts",
    "connector.sources",
    "connector.sources.*",
    "connector.vendors",
    "connector.vendors.*",
    "connector.vendors.*.source",
    "connector.vendors.*.config",
    "connector.vendors.standard.*_events",
    "connector.vendors.standard.wifi_login",
    "connector.platforms",
    "connector.platforms.base",
    "connector.platforms.registry",
    "connector.esps",
    "connector.esps.config",
    "connector.pms",
)
PURE_THIRD_PARTY = {"pydantic", "pydantic_core", "standardwebhooks", "typing_extensions", "annotated_types"}
CLIENT_PATTERNS = ("connector.http", "connector.esps.base", "connector.vendors.*.platform", "connector.vendors.*.esp")
CLIENT_PATTERNS += ("connector.vendors.*.pms", "requests", "requests.*")
SANDBOX_PATTERNS = ("connector.sandbox", "connector.sandbox.*", "connector.vendors.*.sandbox")
SANDBOX_IMPORTERS = ("connector.sandbox", "connector.sandbox.*", "connector.vendors.*.sandbox", "connector.cli")
IO_LIBRARIES = ("flask", "werkzeug", "redis", "rq", "requests", "gunicorn", "urllib3")


def matches(module: str, patterns: tuple[str, ...]) -> bool:
    """Whether a dotted name matches a pattern (``*`` stands for one name, never a dot)."""
    return any(re.fullmatch(re.escape(pattern).replace(r"\*", r"[^.]*"), module) for pattern in patterns)


def modules(root: Path, package: str = "connector") -> dict[str, Path]:
    """Every module of ``package`` under ``root``, by dotted name (a package by its own name)."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at import (module level, inside try/if but not ``if TYPE_CHECKING``)."""
    for node in body:
        yield node
        if isinstance(node, ast.If) and not _is_type_checking(node):
            yield from _top_level(node.body)
            yield from _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _top_level(block)


def _everywhere(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, functions included, except what sits under ``if TYPE_CHECKING``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for stmt in node.orelse for n in [stmt, *_everywhere(stmt)])
            continue
        yield node
        yield from _everywhere(node)


def imports(name: str, path: Path, known: set[str], *, module_level: bool) -> set[str]:
    """The modules ``name`` imports (absolute names; relative imports resolved; ``from pkg import
    submodule`` names the submodule). ``module_level``: only what runs at import time."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = _top_level(tree.body) if module_level else _everywhere(tree)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base == "__future__":
                continue
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known)
    return found


def _with_parents(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[: i + 1]) for i in range(len(parts))}


def graph(root: Path, *, module_level: bool = True, parents: bool = True) -> dict[str, set[str]]:
    """Import edges between the package's modules (``parents``: importing a module also runs its
    parent packages, which a reachability rule must follow and a cycle rule must not)."""
    found = modules(root)
    known = set(found)
    edges: dict[str, set[str]] = {}
    for name, path in found.items():
        targets: set[str] = set()
        for imported in imports(name, path, known, module_level=module_level):
            targets |= _with_parents(imported) if parents else {imported}
        edges[name] = targets - {name}
    return edges


def impure_imports(root: Path) -> dict[str, set[str]]:
    """Pure modules that import a third-party library other than pydantic's or an impure module."""
    edges = graph(root, module_level=False)
    bad: dict[str, set[str]] = {}
    for name, targets in edges.items():
        if not matches(name, PURE_PATTERNS):
            continue
        offending = {
            t
            for t in targets
            if (t.split(".")[0] == "connector" and t in edges and not matches(t, PURE_PATTERNS))
            or (
                t.split(".")[0] != "connector"
                and t.split(".")[0] not in sys.stdlib_module_names
                and t.split(".")[0] not in PURE_THIRD_PARTY
            )
        }
        if offending:
            bad[name] = offending
    return bad


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        node = stack.pop()
        for target in edges.get(node, ()):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def web_clients(root: Path) -> dict[str, set[str]]:
    """Web modules from which a client module is reachable through module-level imports."""
    edges = graph(root)
    bad = {}
    for name in edges:
        if name == "connector.web" or name.startswith("connector.web."):
            clients = {t for t in reachable(edges, name) if matches(t, CLIENT_PATTERNS)}
            if clients:
                bad[name] = clients
    return bad


def sandbox_importers(root: Path) -> dict[str, set[str]]:
    """Modules other than the sandbox server and the CLI that import a sandbox (anywhere in them)."""
    edges = graph(root, module_level=False)
    return {
        name: {t for t in targets if matches(t, SANDBOX_PATTERNS)}
        for name, targets in edges.items()
        if not matches(name, SANDBOX_IMPORTERS) and any(matches(t, SANDBOX_PATTERNS) for t in targets)
    }


def cycles(root: Path) -> list[list[str]]:
    """Import cycles among module-level imports (each once, as the list of its modules)."""
    edges = graph(root, parents=False)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in edges:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_pure_modules_import_only_the_standard_library_pydantic_and_pure_modules():
    assert impure_imports(PACKAGE_ROOT) == {}


def test_every_source_and_model_is_covered_by_the_pure_rule():
    pure = {name for name in modules(PACKAGE_ROOT) if matches(name, PURE_PATTERNS)}
    assert {"connector.vendors.mews.source", "connector.sources.registry", "connector.sources.base"} <= pure
    assert "connector.money" in pure


def test_the_web_package_reaches_no_client():
    assert web_clients(PACKAGE_ROOT) == {}


def test_only_the_sandbox_server_and_the_cli_import_a_sandbox():
    assert sandbox_importers(PACKAGE_ROOT) == {}


def test_there_are_no_import_cycles():
    assert cycles(PACKAGE_ROOT) == []


def test_importing_every_source_loads_no_io_library_at_run_time():
    code = textwrap.dedent(
        f"""
        import sys
        import connector.sources.registry, connector.platforms.registry, connector.esps.config
        import connector.activities, connector.money
        from connector.sources.registry import SOURCES
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {IO_LIBRARIES!r})
        print(len(SOURCES), loaded)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE_ROOT)
    count, loaded = out.stdout.strip().split(" ", 1)
    assert int(count) >= 13
    assert loaded == "[]"


# -- the rules can fail ---------------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture
def bad_package(tmp_path: Path) -> Path:
    """A small ``connector`` package with one violation of every rule."""
    _write(
        tmp_path,
        {
            "connector/__init__.py": "",
            "connector/http.py": "import requests\n",
            "connector/sources/__init__.py": "",
            "connector/sources/base.py": "from pydantic import BaseModel\n",
            "connector/vendors/__init__.py": "",
            "connector/vendors/acme/__init__.py": "",
            # relative import of the HTTP base from a pure source
            "connector/vendors/acme/source.py": "from ...http import x\nfrom ...sources import base\n",
            "connector/vendors/acme/platform.py": "import requests\n",
            "connector/vendors/acme/sandbox.py": "import flask\n",
            "connector/vendors/other/__init__.py": "",
            "connector/vendors/other/source.py": "import redis\n",
            "connector/web/__init__.py": "from connector.web import views\n",
            # reaches a client through another module
            "connector/web/views.py": "from connector import jobs\n",
            "connector/jobs.py": "from connector.vendors.acme import platform, sandbox\n",
            # a cycle
            "connector/a.py": "from connector import b\n",
            "connector/b.py": "from . import a\n",
            # a lazy import inside a function is not a cycle, but does import the sandbox
            "connector/c.py": "def f():\n    from connector.vendors.acme.sandbox import S\n",
        },
    )
    return tmp_path


def test_the_rules_report_every_violation_of_a_bad_package(bad_package: Path):
    impure = impure_imports(bad_package)
    assert impure["connector.vendors.acme.source"] == {"connector.http"}
    assert impure["connector.vendors.other.source"] == {"redis"}
    assert web_clients(bad_package)["connector.web.views"] >= {"connector.vendors.acme.platform", "requests"}
    assert set(sandbox_importers(bad_package)) == {"connector.jobs", "connector.c"}
    assert cycles(bad_package) == [["connector.a", "connector.b"]]


def test_the_rules_pass_the_bad_package_once_it_is_fixed(bad_package: Path):
    _write(
        bad_package,
        {
            "connector/vendors/acme/source.py": "from ...sources import base\n",
            "connector/vendors/other/source.py": "import json\n",
            "connector/jobs.py": "",
            "connector/b.py": "",
            "connector/c.py": "",
        },
    )
    assert impure_imports(bad_package) == {}
    assert web_clients(bad_package) == {}
    assert sandbox_importers(bad_package) == {}
    assert cycles(bad_package) == []
