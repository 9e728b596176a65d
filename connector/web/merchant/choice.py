"""A tenant table chosen by its tag from a registry: ``[loyalty]`` by ``platform`` (PLATFORMS),
``[esp]`` by ``provider`` (ESPS). The Loyalty platform and Email provider pages are this one
machinery with their own extras (the email page's event checkboxes and removal).

Two steps that work without JavaScript: choose (``?<tag>=…``, a GET), then fill in the fields of
the chosen vendor's own config model (:func:`~connector.web.merchant.forms.fields_of`). Secrets
are write-only (their hints only); a secret left empty keeps the stored one; saving another vendor
discards the old vendor's table and keys (its queued jobs then end ``ignored``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from werkzeug.wrappers import Response

from connector.parts import Registration
from connector.settings import Tenant
from connector.web.merchant.forms import SKIPPED, FormField, fields_of, read_form, shown_values
from connector.web.merchant.pages import TenantView, read_only, refuse, save_settings


@dataclass(frozen=True)
class Submitted:
    """A posted form, read: the vendor chosen, its table, and the secret paths it set and drops."""

    choice: str
    table: dict[str, Any]
    secrets_set: list[str]
    secrets_removed: list[str]


@dataclass(frozen=True)
class ChosenTable:
    """``key`` (the tenant table, ``loyalty``) chosen by ``tag`` (``platform``) from ``registry``."""

    key: str
    tag: str
    registry: Mapping[str, Registration[Any]]
    noun: str
    """What the vendor is called on the page ("loyalty platform")."""
    served: Callable[[Tenant], BaseModel | None]
    """The served tenant's table model (``None``: none chosen)."""
    skip: frozenset[str] = field(default=SKIPPED)

    def fields(self, choice: str) -> list[FormField]:
        """The form fields of ``choice``'s config model."""
        return fields_of(self.registry[choice].config, skip=self.skip)

    def saved(self, tenant: TenantView) -> dict[str, Any]:
        """The table as saved (the store's, else what is served, e.g. a tenants-file tenant's; the
        page never shows its secrets), or ``{}``."""
        table = tenant.document.get(self.key)
        if isinstance(table, dict):
            return table
        model = self.served(tenant.served) if tenant.served is not None else None
        return model.model_dump() if model is not None else {}

    def current(self, tenant: TenantView) -> str | None:
        """The vendor saved now, or ``None``."""
        choice = self.saved(tenant).get(self.tag)
        return choice if isinstance(choice, str) and choice in self.registry else None

    def unknown(self, choice: str) -> Response:
        """The refusal of a vendor that is not registered."""
        known = ", ".join(sorted(self.registry))
        return refuse(f"unknown {self.noun} {choice!r} (known: {known})", 400, f"bad_{self.tag}")

    def asked(self, tenant: TenantView, requested: str | None) -> str | Response | None:
        """The vendor whose form to show: the requested one, else the saved one (a read-only
        tenant: always the saved one); an unknown one is refused."""
        current = self.current(tenant)
        if not tenant.editable:
            return current
        if requested and requested not in self.registry:
            return self.unknown(requested)
        return requested or current

    def secret_paths(self, choice: str, table: Mapping[str, Any]) -> list[str]:
        """The secret paths (``loyalty.api_key``) a table of ``choice`` holds."""
        return [f"{self.key}.{f.name}" for f in self.fields(choice) if f.secret and f.name in table]

    def context(self, tenant: TenantView, chosen: str | None, typed: dict[str, Any] | None) -> dict[str, Any]:
        """What the page's template needs: the choices, the current and chosen vendors, the fields
        with their shown values (never a secret) and the stored secrets' hints."""
        table = self.saved(tenant)
        current = self.current(tenant)
        fields = self.fields(chosen) if chosen else []
        same = chosen is not None and chosen == current
        hints = {}
        if same:
            hints = {f.name: h for f in fields if f.secret and (h := tenant.secret_hint(f"{self.key}.{f.name}"))}
        return {
            "choices": sorted(self.registry),
            "current": current,
            "chosen": chosen,
            "fields": fields,
            "values": shown_values(fields, typed if typed is not None else (table if same else None)),
            "hints": hints,
            "source_table": typed if typed is not None else (table if same else None),
        }

    def read(self, tenant: TenantView, form: Any) -> Submitted | Response:
        """The posted form of a vendor's settings, or the refusal (read-only tenant, unknown vendor)."""
        if not tenant.editable:
            return read_only()
        choice = str(form.get(self.tag, ""))
        if choice not in self.registry:
            return self.unknown(choice)
        before = tenant.document.get(self.key)
        before = before if isinstance(before, dict) else {}
        switching = before.get(self.tag) != choice
        table, secrets = read_form(self.fields(choice), form, choice, None if switching else before)
        set_paths = sorted(f"{self.key}.{name}" for name in secrets)
        dropped = self.removed_paths(before) if switching else []
        return Submitted(choice, {self.tag: choice, **table}, set_paths, [p for p in dropped if p not in set_paths])

    def removed_paths(self, before: Mapping[str, Any]) -> list[str]:
        """The secret paths of a saved table that goes (switched away from, or removed)."""
        old = before.get(self.tag)
        return self.secret_paths(str(old), before) if isinstance(old, str) and old in self.registry else []

    def save(self, tenant: TenantView, submitted: Submitted) -> None:
        """Store the submitted table (validated like the tenants file's).

        Raises:
            SettingsRefused: not valid (the problems name the keys).
        """
        save_settings(
            tenant,
            lambda document: {**document, self.key: submitted.table},
            secrets_set=submitted.secrets_set,
            secrets_removed=submitted.secrets_removed,
        )

    def remove(self, tenant: TenantView) -> None:
        """Delete the table (its queued jobs then end ``ignored``).

        Raises:
            SettingsRefused: a tenants-file tenant, or no store.
        """
        before = tenant.document.get(self.key)
        save_settings(
            tenant,
            lambda document: {k: v for k, v in document.items() if k != self.key},
            secrets_removed=self.removed_paths(before if isinstance(before, dict) else {}),
        )
