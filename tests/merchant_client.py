"""A signed-in Flask test client of the merchant pages (for the rules; the browser tests do the rest)."""

from __future__ import annotations

import re
from typing import Any

from browser_support import SECRET_KEY

from connector.merchant_links import make_link_token
from connector.settings import Settings
from connector.tenant_store import TenantStore
from connector.web import create_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class MerchantClient:
    """One browser on the pages: its cookies, the last CSRF token it was given."""

    def __init__(self, settings: Settings) -> None:
        self.client = create_app(settings).test_client()
        self.token = ""

    def sign_in(self, tenant: str) -> MerchantClient:
        link = make_link_token(SECRET_KEY, tenant, 3600)
        page = self.get(f"/app/sign-in?token={link}")
        answer = self.client.post("/app/sign-in", data={"csrf_token": self.token, "token": link})
        assert answer.status_code in (302, 303), (page.status_code, answer.get_data(as_text=True))
        self.get(f"/app/{tenant}/")  # the session's CSRF token
        return self

    def refresh(self) -> None:
        """Read the store again now (a write made outside the pages is otherwise seen within a second)."""
        self.client.application.extensions["connector.tenants"].refresh()

    def get(self, path: str) -> Any:
        answer = self.client.get(path)
        found = CSRF.search(answer.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return answer

    def post(self, path: str, data: dict[str, Any], *, csrf: bool = True) -> Any:
        answer = self.client.post(path, data={**({"csrf_token": self.token} if csrf else {}), **data})
        found = CSRF.search(answer.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return answer


def store(redis: Any) -> TenantStore:
    """The tenant store the pages write (the tests' stable key)."""
    return TenantStore.open(redis, SECRET_KEY)


def merchant_env(env: Any, **extra: str) -> Settings:
    """The test settings with the merchant pages on (a stable key)."""
    settings: Settings = env(CONNECTOR_SECRET_KEY=SECRET_KEY, **extra)
    return settings
