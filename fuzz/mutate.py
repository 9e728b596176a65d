"""Mutations of a parsed JSON fixture, and serialisation that can also emit what Python cannot.

A mutation is ``(path, op)``: ``path`` a tuple of keys / indices into the value, ``op`` one of
``("set", value)``, ``("delete",)``, ``("wrap_list",)``, ``("wrap_object",)``, ``("stringify",)``.
Values may be :class:`Raw` JSON text written verbatim (deep nesting past what ``json.dumps`` can
write, numbers past a float, ``NaN``). The same mutations drive the Hypothesis property test and
``make fuzz``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

Path = tuple[str | int, ...]
Op = tuple[Any, ...]


@dataclass(frozen=True)
class Raw:
    """JSON text inserted verbatim where the value stands."""

    text: str


def deep(levels: int, inner: str = "") -> Raw:
    """``levels`` nested arrays."""
    return Raw("[" * levels + inner + "]" * levels)


NASTY: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1.5,
    -0.0,
    2**63,
    2**64,
    -(2**63) - 1,
    10**30,
    Raw("1" + "0" * 400),  # an integer no float holds
    Raw("1e400"),  # a float literal that overflows
    Raw("-1e-400"),
    Raw("NaN"),
    "",
    " ",
    "x",
    "\ud800",  # lone surrogates: written as escapes
    "a\udc00b",
    "ada\ud800@example.com",
    "@",
    "null",
    "0",
    "1" * 30,
    "2026-02-30T25:61:00Z",
    "9999-12-31T23:59:59+00:00",
    "0001-01-01T00:00:00-23:59",
    "x" * 3000,
    [],
    {},
    ["x"],
    [{}],
    [[]],
    {"x": "y"},
    {"id": []},
    {"amount": {}, "currency_code": []},
    deep(10),
    deep(64),
    deep(65),
    deep(1000),
    deep(2000),
)
SIMPLE_OPS: tuple[Op, ...] = (("delete",), ("wrap_list",), ("wrap_object",), ("stringify",))


def paths(value: Any, limit: int = 400) -> list[Path]:
    """Every path into ``value`` (root first, breadth first), at most ``limit``."""
    found: list[Path] = [()]
    queue: list[tuple[Path, Any]] = [((), value)]
    while queue and len(found) < limit:
        here, node = queue.pop(0)
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            found.append((*here, key))
            queue.append(((*here, key), child))
    return found[:limit]


def _changed(node: Any, op: Op) -> Any:
    kind = op[0]
    if kind == "set":
        return op[1]
    if kind == "wrap_list":
        return [node]
    if kind == "wrap_object":
        return {"value": node}
    if kind == "stringify":
        try:
            return json.dumps(node)
        except (TypeError, ValueError):
            return "x"
    raise ValueError(f"unknown op {op!r}")


def apply(value: Any, path: Path, op: Op) -> Any:
    """``value`` with ``op`` applied at ``path`` (copied along the path; a missing path: unchanged)."""
    if not path:
        return None if op[0] == "delete" else _changed(value, op)
    key, rest = path[0], path[1:]
    if isinstance(value, dict) and isinstance(key, str) and key in value:
        copy = dict(value)
        if not rest and op[0] == "delete":
            del copy[key]
        else:
            copy[key] = apply(value[key], rest, op)
        return copy
    if isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value):
        items = list(value)
        if not rest and op[0] == "delete":
            del items[key]
        else:
            items[key] = apply(value[key], rest, op)
        return items
    return value


def apply_all(value: Any, mutations: list[tuple[Path, Op]]) -> Any:
    """Every mutation in turn."""
    for path, op in mutations:
        value = apply(value, path, op)
    return value


def dumps(value: Any) -> bytes:
    """JSON bytes of ``value``; :class:`Raw` parts are written verbatim, lone surrogates escaped."""
    raws: list[str] = []

    def placeholder(obj: Any) -> str:
        if isinstance(obj, Raw):
            raws.append(obj.text)
            return f"\x00raw{len(raws) - 1}\x00"
        raise TypeError(type(obj).__name__)

    text = json.dumps(value, default=placeholder)  # ensure_ascii: surrogates become \ud800 escapes
    for index, raw in enumerate(raws):
        text = text.replace(json.dumps(f"\x00raw{index}\x00"), raw)
    return text.encode("utf-8")


def random_mutations(rng: random.Random, value: Any, count: int) -> list[tuple[Path, Op]]:
    """``count`` random mutations of ``value`` (paths drawn from the original)."""
    candidates = paths(value)
    result: list[tuple[Path, Op]] = []
    for _ in range(count):
        path = rng.choice(candidates[1:] or candidates) if rng.random() > 0.03 else ()
        op: Op = ("set", rng.choice(NASTY)) if rng.random() < 0.7 else rng.choice(SIMPLE_OPS)
        result.append((path, op))
    return result


GARBAGE: tuple[bytes, ...] = (
    b"",
    b" ",
    b"{",
    b"null",
    b"[]",
    b'"text"',
    b"\xff\xfe{\x00}\x00",
    '{"a": 1}'.encode("utf-16"),
    b'{"a": "caf\xe9"}',
    b"\xef\xbb\xbf{}",
    b"[" * 5000,
    b"[" * 3000 + b"]" * 3000,
    b'{"a": NaN}',
    b'{"a": 1e999}',
    b'{"a": "\\ud800"}',
    b"<xml/>",
    b"a=1&b=2",
)


def garbage(rng: random.Random) -> bytes:
    """A body that is not a usable webhook (or not JSON at all)."""
    if rng.random() < 0.3:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    return rng.choice(GARBAGE)
