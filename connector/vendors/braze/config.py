"""Braze's ``[tenants.<t>.esp]`` table (``provider = "braze"``): pure pydantic, no I/O."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from connector.esps.config import EspBase


class BrazeConfig(EspBase):
    """Braze ``/users/track``."""

    provider: Literal["braze"]
    api_key: SecretStr = Field(description="REST API key with users.track")
    base_url: str = Field(description="the instance's REST endpoint, e.g. https://rest.iad-01.braze.com")

    def account_secret(self) -> str:
        """Workspace = instance + key."""
        return f"{self.base_url}|{self.api_key.get_secret_value()}"
