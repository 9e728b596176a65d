"""Finding email addresses in stored job data: the same addresses as before, in linear time (a
guest's long string must not make every later erasure scan take minutes)."""

from __future__ import annotations

import time

import pytest

from connector.erasure import emails_in


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("", []),
        ("no address here", []),
        ("ada@example.com", ["ada@example.com"]),
        (
            "mailto:Ada.Lovelace+loyalty@Example.co.uk, grace@navy.mil.",
            ["Ada.Lovelace+loyalty@Example.co.uk", "grace@navy.mil"],
        ),
        ('{"email":"ada@example.com","note":"a@b"}', ["ada@example.com"]),
        ("@@@ada@example.com@", ["ada@example.com"]),
        ("x" * 500 + "ada@example.com", None),
    ],
)
def test_the_addresses_inside_a_text(text, found):
    result = list(emails_in(text))
    if found is None:  # a local part longer than RFC 5321's 64: its last 64 characters are kept
        assert len(result) == 1 and result[0].endswith("ada@example.com") and len(result[0].split("@")[0]) == 64
    else:
        assert result == found


@pytest.mark.parametrize(
    "text",
    ["a" * 200_000, "a" * 200_000 + "@", "a@" * 100_000, ("a" * 1000 + "@" + "b" * 1000 + ".") * 100],
    ids=["run", "run-then-at", "many-ats", "near-misses"],
)
def test_a_long_string_is_scanned_in_linear_time(text):
    started = time.perf_counter()
    list(emails_in(text))
    assert time.perf_counter() - started < 0.5
