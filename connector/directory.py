"""The tenants a process serves: the tenants file's, and the shops that installed the Shopify app.

Web and worker processes look tenants up here, never in the file alone. With the Shopify app
enabled, the installations are read again when their version key changes; the key is read at most
once per :attr:`TenantDirectory.recheck` seconds, so the intake pays one Redis read per second per
process, not one per webhook, and a new or removed installation is served within that second.

An installation becomes a tenant named from the shop handle, with a ``shopify`` source signed
with the app secret. When a tenants-file tenant already has that Shopify ``shop_domain``, the
installation attaches to it instead: the file tenant is served with the app secret added to its
Shopify secrets. An installed shop that has not chosen its loyalty platform yet is a tenant whose
platform is :class:`~connector.platforms.base.UnconfiguredPlatform`: its webhooks are answered
``ignored`` with that reason.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from pydantic import SecretStr
from redis import Redis

from connector.platforms.base import PlatformConfig, UnconfiguredPlatform
from connector.platforms.registry import parse_loyalty
from connector.settings import Settings, Tenant
from connector.vendors.shopify.installations import Installation, InstallationStore, shop_handle
from connector.vendors.shopify.source import ShopifyConfig

RECHECK_SECONDS = 1.0


def file_shops(tenants: dict[str, Tenant]) -> dict[str, str]:
    """Shop domain → tenants-file tenant, for the tenants that have a Shopify source."""
    shops = {}
    for name, tenant in tenants.items():
        source = tenant.sources.get("shopify")
        if isinstance(source, ShopifyConfig):
            shops[source.shop_domain] = name
    return shops


def installation_tenant_name(shop: str, taken: set[str]) -> str:
    """The tenant name of a new installation: the shop handle, or the handle with a suffix when a
    tenants-file tenant already has that name (for another shop)."""
    handle = shop_handle(shop)[:56] or "shop"
    name, n = handle, 2
    while name in taken:
        name, n = f"{handle}-{n}", n + 1
    return name


class TenantDirectory:
    """File tenants plus Shopify installations, kept current (see the module docstring)."""

    def __init__(self, settings: Settings, redis: Redis | None = None, *, recheck: float = RECHECK_SECONDS) -> None:
        self.settings = settings
        self.redis = redis
        self.recheck = recheck
        self.store: InstallationStore | None = None
        if settings.shopify_app_enabled:
            if redis is None:
                raise ValueError("the Shopify app needs Redis for its installations")
            self.store = InstallationStore.open(redis, settings.secret_key.get_secret_value())
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._version: int | None = None
        self._tenants: dict[str, Tenant] = dict(settings.tenants)
        self._shops: dict[str, str] = file_shops(settings.tenants)

    # -- lookups -------------------------------------------------------------------------------

    def get(self, name: str) -> Tenant | None:
        """The tenant called ``name``, or ``None``."""
        self._refresh()
        return self._tenants.get(name)

    def by_shop(self, shop: str) -> Tenant | None:
        """The tenant that serves the Shopify shop ``shop`` (installed or in the tenants file)."""
        self._refresh()
        name = self._shops.get(shop.lower())
        return self._tenants.get(name) if name else None

    def all(self) -> dict[str, Tenant]:
        """Every tenant served now, by name."""
        self._refresh()
        return dict(self._tenants)

    def name_for_new_shop(self, shop: str) -> str:
        """The tenant name an installation of ``shop`` gets (its file tenant's, when there is one)."""
        self._refresh(force=True)
        if shop in self._shops:
            return self._shops[shop]
        return installation_tenant_name(shop, set(self._tenants))

    # -- refreshing ----------------------------------------------------------------------------

    def _refresh(self, *, force: bool = False) -> None:
        if self.store is None:
            return
        now = time.monotonic()
        if not force and now - self._checked_at < self.recheck:
            return
        with self._lock:
            if not force and now - self._checked_at < self.recheck:
                return
            version = self.store.version()
            self._checked_at = now
            if version == self._version:
                return
            self._tenants, self._shops = self._build(self.store.installed())
            self._version = version

    def refresh(self) -> None:
        """Read the installations again now (after this process changed one)."""
        self._refresh(force=True)

    def _build(self, installations: list[Installation]) -> tuple[dict[str, Tenant], dict[str, str]]:
        assert self.store is not None
        file_tenants = self.settings.tenants
        tenants = dict(file_tenants)
        shops = file_shops(file_tenants)
        app_secret = self.settings.shopify_api_secret
        for installation in installations:
            loyalty = self._loyalty(installation)
            existing = shops.get(installation.shop)
            if existing is not None:  # a tenants-file tenant: served with the app secret too
                tenant = file_tenants[existing]
                source = tenant.sources["shopify"]
                assert isinstance(source, ShopifyConfig)
                secrets = [*source.secrets, *([app_secret] if app_secret else [])]
                sources = {**tenant.sources, "shopify": source.model_copy(update={"secrets": secrets})}
                tenants[existing] = tenant.model_copy(update={"sources": sources})
                continue
            source = ShopifyConfig(shop_domain=installation.shop, secrets=[app_secret or SecretStr("")])
            tenants[installation.tenant] = Tenant(
                name=installation.tenant,
                timezone=installation.timezone,
                loyalty=loyalty,
                sources={"shopify": source},
            )
            shops[installation.shop] = installation.tenant
        return tenants, shops

    def _loyalty(self, installation: Installation) -> PlatformConfig:
        assert self.store is not None
        table: dict[str, Any] | None = self.store.loyalty_table(installation.shop) if installation.has_loyalty else None
        if table is None:
            return UnconfiguredPlatform()
        return parse_loyalty(table, f"installation {installation.shop}.loyalty")
