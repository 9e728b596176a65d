"""Registrations: where one vendor's parts live for one role, named in that role's registry.

A registry line names a vendor's configuration model (pure, imported with the registry) and its
client and sandbox as :class:`Part` references, ``"module:attribute"``, imported when first used.
So reading configuration (the web tier does) loads no HTTP client, and nothing but the sandbox
server loads a sandbox.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

Config = TypeVar("Config", bound=BaseModel)


@dataclass(frozen=True)
class Part:
    """A module (``"pkg.module"``) or one of its attributes (``"pkg.module:name"``), loaded on use."""

    target: str

    @cached_property
    def module(self) -> str:
        """The module's dotted name."""
        return self.target.partition(":")[0]

    def load(self) -> Any:
        """The module, or its attribute (imports the module the first time)."""
        module_name, _, attribute = self.target.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, attribute) if attribute else module


@dataclass(frozen=True)
class Registration(Generic[Config]):
    """One vendor in one role: its configuration model, its client and its sandbox."""

    name: str
    config: type[Config]
    client: Part
    sandbox: Part


def by_name(registrations: Iterable[Registration[Config]]) -> dict[str, Registration[Config]]:
    """The registry mapping: each registration under its name (a name used twice is a bug)."""
    registry: dict[str, Registration[Config]] = {}
    for registration in registrations:
        if registration.name in registry:
            raise ValueError(f"{registration.name} is registered twice")
        registry[registration.name] = registration
    return registry


def vendor_parts(name: str, client_module: str, client: str) -> tuple[Part, Part]:
    """The client and sandbox of the vendor folder ``connector/vendors/<name>/`` (the convention)."""
    return Part(f"connector.vendors.{name}.{client_module}:{client}"), Part(f"connector.vendors.{name}.sandbox")


def parse_tagged(raw: Any, tag: str, registry: dict[str, Registration[Config]], prefix: str) -> Config:
    """Validate a table whose ``tag`` key (``platform``, ``provider``) names its registration.

    Raises:
        ValueError: every problem, ``"; "``-joined, each naming its key (``<prefix>.api_key: …``).
    """
    if not isinstance(raw, dict):
        raise ValueError(f"{prefix}: must be a table")
    known = ", ".join(registry)
    name = raw.get(tag)
    if name is None:
        raise ValueError(f"{prefix}.{tag}: required; one of {known}")
    registration = registry.get(name) if isinstance(name, str) else None
    if registration is None:
        raise ValueError(f"{prefix}.{tag}: must be one of {known} (not {name!r})")
    try:
        return registration.config.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(part) for part in err["loc"])
            lines.append(f"{prefix}.{where}: {err['msg']}" if where else f"{prefix}: {err['msg']}")
        raise ValueError("; ".join(lines)) from None
