"""Klaviyo's ``[tenants.<t>.esp]`` table (``provider = "klaviyo"``): pure pydantic, no I/O."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from connector.esps.config import EspBase

KLAVIYO_REVISION = "2026-10-15"
"""The default Klaviyo API ``revision`` header: the latest stable (GA) revision we could verify.

Source: Klaviyo's API changelog (developers.klaviyo.com/en/changelog, "Revision 2026-10-15 (GA)")
and its revision-changes reference (developers.klaviyo.com, "Current stable revision:
2026-10-15"), checked 2026-12-01. Klaviyo supports a revision for 2 years (stable 1, deprecated
1); 2024 revisions are retired (410 or fall forward) since October 2026. Bump this when a newer
revision is adopted; tenants may pin their own with ``esp.revision``.
"""


class KlaviyoConfig(EspBase):
    """Klaviyo Events API (``POST /api/events``)."""

    provider: Literal["klaviyo"]
    api_key: SecretStr = Field(description="private API key (pk_…)")
    base_url: str = "https://a.klaviyo.com"
    revision: str = Field(default=KLAVIYO_REVISION, pattern=r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")

    def render_default(self, slug: str) -> str:
        """Klaviyo metric names are display text: ``Loyalty Tier Upgraded``."""
        return slug.replace("_", " ").title()

    def account_secret(self) -> str:
        """The private key (one key per account)."""
        return self.api_key.get_secret_value()
