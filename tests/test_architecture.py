"""Translation stays pure: sources, activities and money import no web, HTTP, Redis or RQ code."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent / "connector"
PURE = sorted([*ROOT.glob("sources/*.py"), ROOT / "activities.py", ROOT / "money.py", ROOT / "errors.py"])
# standardwebhooks is pure computation (hmac/base64/json); the pure connector modules may use each other.
ALLOWED_THIRD_PARTY = {"pydantic", "standardwebhooks"}
ALLOWED_CONNECTOR = ("connector.sources", "connector.activities", "connector.money", "connector.errors")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_modules_import_only_stdlib_pydantic_and_pure_connector_modules(path):
    offending = []
    for name in imported_modules(path):
        top = name.split(".")[0]
        if top == "connector":
            if not name.startswith(ALLOWED_CONNECTOR):
                offending.append(name)
        elif top not in sys.stdlib_module_names and top not in ALLOWED_THIRD_PARTY and top != "__future__":
            offending.append(name)
    assert offending == [], f"{path.name} imports {offending}"


def test_the_rule_can_fail():
    assert "flask" not in sys.stdlib_module_names
    assert imported_modules(ROOT / "web" / "webhooks.py") & {"flask"}
