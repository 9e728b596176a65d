"""Every vendor folder has a NOTE.md with the required headings, and the README links each one.

A new vendor folder without a note (or whose note the README does not link) fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
VENDORS = ROOT / "connector" / "vendors"
HEADINGS = (
    "Role(s)",
    "Docs followed",
    "Auth",
    "Delivery id / dedup",
    "Events handled",
    "Mapping",
    "Configuration",
    "Sandbox",
    "Unverified facts",
)


def vendor_folders() -> list[str]:
    return sorted(p.name for p in VENDORS.iterdir() if p.is_dir() and (p / "__init__.py").exists())


def headings(text: str) -> list[str]:
    """The level-2 headings of a Markdown text, outside fenced code blocks, in order."""
    found, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("## "):
            found.append(line[3:].strip())
    return found


def test_there_are_vendor_folders() -> None:
    assert len(vendor_folders()) >= 20


@pytest.mark.parametrize("vendor", vendor_folders())
def test_note_has_the_required_headings_in_order(vendor: str) -> None:
    note = VENDORS / vendor / "NOTE.md"
    assert note.is_file(), f"connector/vendors/{vendor}/NOTE.md is missing"
    assert headings(note.read_text(encoding="utf-8")) == list(HEADINGS)


def test_readme_links_every_note() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(connector/vendors/([a-z0-9_]+)/NOTE\.md\)", readme))
    missing = [vendor for vendor in vendor_folders() if vendor not in linked]
    assert not missing, f"README.md links no NOTE.md of: {', '.join(missing)}"


def test_headings_reads_only_level_two_outside_code() -> None:
    text = "# T\n## Role(s)\n```toml\n## not a heading\n```\n### sub\n## Auth\n"
    assert headings(text) == ["Role(s)", "Auth"]
