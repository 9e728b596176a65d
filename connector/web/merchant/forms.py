"""Forms built from a vendor's own config model: the pages never keep a second list of a vendor's
keys. A ``SecretStr`` is a write-only password field, a ``Literal`` a choice, a ``bool`` a
checkbox, a list of ``Literal`` a set of checkboxes, a list of text one value per line and a
``dict`` of text ``key = value`` per line. Labels come from the field's ``title``/``description``;
fields with a default are "advanced" (folded away, still editable).

:func:`read_form` turns a submitted form back into a config table (the tenants file's shape),
keeping a stored secret whose field was left empty, for the caller to validate with the model.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

Kind = Literal["text", "secret", "number", "checkbox", "select", "choices", "lines", "pairs", "secret-lines"]

SKIPPED = frozenset({"platform", "provider", "previous"})
"""Keys never shown as fields: the tag chosen on the page, and rotation (its own buttons)."""


@dataclass(frozen=True)
class FormField:
    """One field of a config model, as the form shows it."""

    name: str
    label: str
    kind: Kind
    required: bool
    default: str = ""
    choices: tuple[str, ...] = ()
    help: str = ""

    @property
    def secret(self) -> bool:
        """Whether the value is write-only (never sent back to the browser)."""
        return self.kind in ("secret", "secret-lines")


def _args(annotation: Any) -> tuple[Any, ...]:
    return typing.get_args(annotation)


def _without_none(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in _args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _is_literal(annotation: Any) -> bool:
    return typing.get_origin(annotation) is Literal


def _kind(annotation: Any) -> tuple[Kind, tuple[str, ...]]:
    annotation = _without_none(annotation)
    origin = typing.get_origin(annotation)
    if annotation is SecretStr:
        return "secret", ()
    if annotation is bool:
        return "checkbox", ()
    if annotation in (int, float):
        return "number", ()
    if _is_literal(annotation):
        return "select", tuple(str(a) for a in _args(annotation))
    if origin in (list, tuple, set, frozenset):
        inner = _without_none(_args(annotation)[0]) if _args(annotation) else str
        if inner is SecretStr:
            return "secret-lines", ()
        if _is_literal(inner):
            return "choices", tuple(str(a) for a in _args(inner))
        return "lines", ()
    if origin is dict:
        return "pairs", ()
    if typing.get_origin(annotation) is typing.Annotated:
        return _kind(_args(annotation)[0])
    return "text", ()


def _label(name: str, info: FieldInfo) -> str:
    return info.title or name.replace("_", " ").capitalize()


def _default(info: FieldInfo) -> str:
    if info.is_required() or info.default is None:
        return ""
    value = info.default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "\n".join(str(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(f"{k} = {v}" for k, v in value.items())
    return str(value) if isinstance(value, str | int | float) else ""


def fields_of(model: type[BaseModel], *, skip: frozenset[str] = SKIPPED) -> list[FormField]:
    """The form fields of ``model``: required ones first, then the ones with a default."""
    found = []
    for name, info in model.model_fields.items():
        if name in skip or info.exclude:
            continue
        kind, choices = _kind(info.annotation)
        found.append(
            FormField(
                name=name,
                label=_label(name, info),
                kind=kind,
                required=info.is_required(),
                default=_default(info),
                choices=choices,
                help=info.description or "",
            )
        )
    return sorted(found, key=lambda f: not f.required)


def shown_values(fields: list[FormField], table: Mapping[str, Any] | None) -> dict[str, str]:
    """The values to fill the form with: the table's, never a secret."""
    shown: dict[str, str] = {}
    for field in fields:
        if field.secret or table is None or field.name not in table:
            continue
        value = table[field.name]
        if field.kind == "checkbox":
            shown[field.name] = "true" if value else "false"
        elif field.kind in ("lines", "choices"):
            shown[field.name] = "\n".join(str(v) for v in value or [])
        elif field.kind == "pairs":
            shown[field.name] = "\n".join(f"{k} = {v}" for k, v in (value or {}).items())
        elif value is not None:
            shown[field.name] = str(value)
    return shown


def read_form(
    fields: list[FormField], form: Any, prefix: str, stored: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[str]]:
    """The table a submitted form describes, and the names of the secrets it sets anew.

    ``form`` is the request's form (``get``/``getlist``); field ``x`` is posted as ``prefix.x``.
    An empty secret keeps the stored one (``stored``: the table saved before, or ``None``); an
    empty optional field is left out, so the model's default applies. Values stay text: the
    model validates (and converts) them, and names any problem by its key.
    """
    table: dict[str, Any] = {}
    secrets_set: list[str] = []
    for field in fields:
        key = f"{prefix}.{field.name}"
        if field.kind == "checkbox":
            table[field.name] = form.get(key) in ("on", "true", "1")
            continue
        if field.kind == "choices":
            picked = [v for v in form.getlist(key) if v in field.choices]
            if picked or f"{key}.present" in form:
                table[field.name] = picked
            continue
        raw = (form.get(key) or "").strip()
        if field.secret:
            if raw:
                table[field.name] = (
                    [line.strip() for line in raw.splitlines() if line.strip()]
                    if (field.kind == "secret-lines")
                    else raw
                )
                secrets_set.append(field.name)
            elif stored is not None and stored.get(field.name):
                table[field.name] = stored[field.name]  # left empty: the stored secret is kept
            continue
        if not raw:
            continue
        if field.kind == "lines":
            table[field.name] = [line.strip() for line in raw.splitlines() if line.strip()]
        elif field.kind == "pairs":
            pairs: dict[str, str] = {}
            for line in raw.splitlines():
                if "=" in line:
                    k, v = line.split("=", 1)
                    if k.strip():
                        pairs[k.strip()] = v.strip()
            table[field.name] = pairs
        else:
            table[field.name] = raw
    return table, secrets_set
