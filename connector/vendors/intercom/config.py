"""Intercom's ``[tenants.<t>.esp]`` table (``provider = "intercom"``): pure pydantic, no I/O."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from connector.esps.config import EspBase


class IntercomConfig(EspBase):
    """Intercom data events (``POST /events``)."""

    provider: Literal["intercom"]
    access_token: SecretStr
    base_url: str = Field(default="https://api.intercom.io", description="EU: https://api.eu.intercom.io")
    version: str = "2.14"

    @classmethod
    def name_problem(cls, name: str) -> str | None:
        """Intercom rewrites ``.`` and ``$``; refuse them so the name stays what was configured."""
        if not name:
            return "is empty"
        if "." in name or "$" in name:
            return "must not contain '.' or '$' (Intercom rewrites them)"
        return None

    def render_default(self, slug: str) -> str:
        """Intercom suggests past-tense verb-noun in kebab-case: ``loyalty-tier-upgraded``."""
        return slug.replace("_", "-")

    def account_secret(self) -> str:
        """The access token (limits are per app and workspace)."""
        return self.access_token.get_secret_value()
