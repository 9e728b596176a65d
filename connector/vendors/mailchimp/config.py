"""Mailchimp's ``[tenants.<t>.esp]`` table (``provider = "mailchimp"``): pure pydantic, no I/O."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr

from connector.esps.config import EspBase

MAILCHIMP_NAME = re.compile(r"^[A-Za-z0-9_-]{2,30}$")


class MailchimpConfig(EspBase):
    """Mailchimp Marketing API member events."""

    provider: Literal["mailchimp"]
    api_key: SecretStr = Field(description="API key ending in -<dc>, e.g. …-us6")
    list_id: str = Field(min_length=1, description="audience id")
    base_url: str | None = Field(default=None, description="default https://<dc>.api.mailchimp.com/3.0")
    upsert_member: bool = True
    status_if_new: Literal["transactional", "pending", "subscribed"] = "transactional"

    @classmethod
    def name_problem(cls, name: str) -> str | None:
        """Mailchimp: 2 to 30 characters, letters, digits, ``_`` and ``-``."""
        if not MAILCHIMP_NAME.match(name):
            return "must be 2-30 letters, digits, '_' or '-' (Mailchimp)"
        return None

    @property
    def api_base(self) -> str:
        """``base_url`` or the datacenter URL from the key's ``-<dc>`` suffix."""
        if self.base_url:
            return self.base_url
        key = self.api_key.get_secret_value()
        dc = key.rsplit("-", 1)[-1] if "-" in key else ""
        if not re.fullmatch(r"[a-z]+[0-9]+", dc):
            raise ValueError("mailchimp api_key has no -<dc> suffix; set base_url")
        return f"https://{dc}.api.mailchimp.com/3.0"

    def account_secret(self) -> str:
        """The API key."""
        return self.api_key.get_secret_value()
