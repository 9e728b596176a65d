"""Customer.io's ``[tenants.<t>.esp]`` table (``provider = "customerio"``): pure pydantic, no I/O."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from connector.esps.config import EspBase


class CustomerIoConfig(EspBase):
    """Customer.io Track API (v1)."""

    provider: Literal["customerio"]
    site_id: str = Field(min_length=1)
    api_key: SecretStr
    base_url: str = Field(default="https://track.customer.io", description="EU: https://track-eu.customer.io")
    identify: bool = True

    def account_secret(self) -> str:
        """The workspace's site id."""
        return self.site_id
