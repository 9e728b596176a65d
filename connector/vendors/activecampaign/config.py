"""ActiveCampaign's ``[tenants.<t>.esp]`` table (``provider = "activecampaign"``): pure pydantic, no I/O."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from connector.esps.config import EspBase


class ActiveCampaignConfig(EspBase):
    """ActiveCampaign Event Tracking (``POST https://trackcmp.net/event``)."""

    provider: Literal["activecampaign"]
    account_id: str = Field(min_length=1, description="actid")
    event_key: SecretStr = Field(description="Event Tracking key")
    base_url: str = "https://trackcmp.net"

    @classmethod
    def name_problem(cls, name: str) -> str | None:
        """ActiveCampaign: at most 32 characters."""
        if not name:
            return "is empty"
        if len(name) > 32:
            return "is longer than 32 characters (ActiveCampaign)"
        return None

    def account_secret(self) -> str:
        """The account id (the 5 req/s limit is per account)."""
        return self.account_id
