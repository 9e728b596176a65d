"""The tenants a process serves: the tenants file's, the tenant store's and the Shopify installations.

Web and worker processes look tenants up here, never in the file alone. Three places feed the
same validated :class:`~connector.settings.Tenant` model:

* the tenants file (read once; the self-hosting engineers' tenants, read-only in the pages);
* the tenant store in Redis (:mod:`connector.tenant_store`: the merchant pages and the operator's
  ``connector tenants add``), when ``CONNECTOR_SECRET_KEY`` is set;
* the Shopify app's installations (:mod:`connector.vendors.shopify.installations`).

The store and the installations are read again when their shared version key changes; the key is
read at most once per :attr:`TenantDirectory.recheck` seconds, so the intake pays one Redis read
per second per process, not one per webhook, and a change is served within that second. A
tenants-file name always wins: the store cannot shadow a file tenant.

An installation becomes a tenant named from the shop handle, with a ``shopify`` source signed
with the app secret; the merchant's settings for it (loyalty platform, more sources, ESP) are the
stored tenant of that name. When a tenants-file tenant already has that Shopify ``shop_domain``,
the installation attaches to it instead: the file tenant is served with the app secret added to
its Shopify secrets. A tenant that has not chosen its loyalty platform yet has the platform
:class:`~connector.platforms.base.UnconfiguredPlatform`: its webhooks are answered ``ignored``
with that reason.

Every rebuild also hands the secrets of every tenant to the log redactor
(:func:`connector.redaction.install_log_redaction`): secrets typed into the pages are masked
everywhere, as the configured ones are.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from pydantic import SecretStr
from redis import Redis
from redis.exceptions import RedisError

from connector import redaction
from connector.errors import ConfigError
from connector.platforms.base import PlatformConfig, UnconfiguredPlatform
from connector.platforms.registry import parse_loyalty
from connector.settings import Settings, Tenant, mews_enterprises, parse_tenant_document
from connector.tenant_store import VERSION_KEY, StoredTenant, TenantStore
from connector.vendors.shopify.installations import Installation, InstallationStore, shop_handle
from connector.vendors.shopify.source import ShopifyConfig

log = logging.getLogger(__name__)

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
    """File tenants, stored tenants and Shopify installations, kept current (see the module docstring)."""

    def __init__(self, settings: Settings, redis: Redis | None = None, *, recheck: float = RECHECK_SECONDS) -> None:
        self.settings = settings
        self.redis = redis
        self.recheck = recheck
        self.store: InstallationStore | None = None
        """The Shopify installations (``None``: the app is not enabled)."""
        self.tenant_store: TenantStore | None = None
        """The stored tenants (``None``: no stable ``CONNECTOR_SECRET_KEY``, file tenants only)."""
        key = settings.secret_key.get_secret_value()
        if settings.shopify_app_enabled:
            if redis is None:
                raise ValueError("the Shopify app needs Redis for its installations")
            self.store = InstallationStore.open(redis, key, check=False)
        if settings.tenant_store_enabled and redis is not None:
            self.tenant_store = TenantStore.open(redis, key, check=False)
        self._keys_checked = False
        self.stale = False
        """Whether the last read of the store failed (Redis down): what is served may be old."""
        try:  # a wrong CONNECTOR_SECRET_KEY stops start-up here; Redis down: checked once it answers
            self._check_keys()
        except RedisError as exc:
            self.stale = True
            log.warning("tenants: Redis unavailable at start (%s); the stored tenants are read once it answers", exc)
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._version: int | None = None
        self._tenants: dict[str, Tenant] = dict(settings.tenants)
        self._shops: dict[str, str] = file_shops(settings.tenants)
        self._enterprises: dict[str, str] = dict(settings.mews_enterprises)
        self._stored: dict[str, StoredTenant] = {}
        self._problems: dict[str, list[str]] = {}
        self._secrets: tuple[str, ...] | None = None

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

    def by_mews_enterprise(self, enterprise: str) -> str | None:
        """The name of the tenant whose Mews source has ``enterprise_id`` ``enterprise`` (the
        shared Mews URL's routing), or ``None``."""
        self._refresh()
        return self._enterprises.get(enterprise)

    def all(self) -> dict[str, Tenant]:
        """Every tenant served now, by name."""
        self._refresh()
        return dict(self._tenants)

    def secrets(self) -> tuple[str, ...]:
        """Every secret of the settings and of every tenant served now: what failure reasons,
        activity records and logs are redacted with (computed once per change, not per job)."""
        self._refresh()
        if self._secrets is None:
            self._secrets = redaction.configured_secrets(self.settings, self._tenants.values())
        return self._secrets

    def is_file_tenant(self, name: str) -> bool:
        """Whether ``name`` comes from the tenants file (read-only in the pages)."""
        return name in self.settings.tenants

    def stored(self, name: str) -> StoredTenant | None:
        """The stored record behind tenant ``name`` (the pages' settings), or ``None``."""
        self._refresh()
        return self._stored.get(name)

    def problems(self, name: str) -> list[str]:
        """Why the stored tenant ``name`` is not served as stored (empty: it is)."""
        self._refresh()
        return list(self._problems.get(name, []))

    def installation_tenants(self) -> dict[str, Installation]:
        """Installed Shopify shops by the tenant name they are served as (not the file tenants')."""
        if self.store is None:
            return {}
        self._refresh()
        return {i.tenant: i for i in self.store.installed() if i.shop not in file_shops(self.settings.tenants)}

    def name_taken(self, name: str) -> bool:
        """Whether a new stored tenant may not be called ``name`` (a file, stored or installation tenant has it)."""
        self._refresh(force=True)
        if name in self._tenants or name in self._stored:
            return True
        return self.store is not None and any(i.tenant == name for i in self.store.all())

    def name_for_new_shop(self, shop: str) -> str:
        """The tenant name an installation of ``shop`` gets (its file tenant's, when there is one)."""
        self._refresh(force=True)
        if shop in self._shops:
            return self._shops[shop]
        return installation_tenant_name(shop, set(self._tenants) | set(self._stored))

    # -- refreshing ----------------------------------------------------------------------------

    def _check_keys(self) -> None:
        """The start-up check that ``CONNECTOR_SECRET_KEY`` opens what is sealed (once).

        Raises:
            WrongSecretKeyError: another key sealed it.
            RedisError: Redis does not answer (checked again at the next refresh).
        """
        for store in (self.store, self.tenant_store):
            if store is not None:
                store.check_key()
        self._keys_checked = True

    def _refresh(self, *, force: bool = False) -> None:
        if self.store is None and self.tenant_store is None:
            return
        assert self.redis is not None
        now = time.monotonic()
        if not force and now - self._checked_at < self.recheck:
            return
        with self._lock:
            if not force and now - self._checked_at < self.recheck:
                return
            self._checked_at = now
            try:
                if not self._keys_checked:
                    self._check_keys()
                raw = self.redis.get(VERSION_KEY)
                version = int(raw) if raw is not None else 0
                self.stale = False
                if version == self._version:
                    return
                self._build()
            except RedisError as exc:
                self.stale = True
                # Serve the tenants known so far: the intake then answers 503 (Retry-After) when it
                # cannot enqueue, rather than failing here; read again at the next recheck.
                log.warning("tenants: Redis unavailable, serving the tenants known so far: %s", exc)
                return
            self._version = version

    def refresh(self) -> None:
        """Read the store and the installations again now (after this process changed one)."""
        self._refresh(force=True)

    def _build(self) -> None:
        file_tenants = self.settings.tenants
        tenants = dict(file_tenants)
        shops = file_shops(file_tenants)
        stored = self.tenant_store.all() if self.tenant_store is not None else {}
        installations = self.store.all() if self.store is not None else []
        owned = {i.tenant for i in installations if i.shop not in shops}  # installation tenants' names
        problems: dict[str, list[str]] = {}
        for name, record in stored.items():
            if name in file_tenants or name in owned:
                continue  # a file tenant's name always wins; installations are added below
            tenant = self._parse_stored(name, record, problems)
            if tenant is not None:
                tenants[name] = tenant
        app_secret = self.settings.shopify_api_secret
        for installation in installations:
            if not installation.installed:
                continue
            existing = shops.get(installation.shop)
            if existing is not None:  # a tenants-file tenant: served with the app secret too
                tenant = file_tenants[existing]
                source = tenant.sources["shopify"]
                assert isinstance(source, ShopifyConfig)
                secrets = [*source.secrets, *([app_secret] if app_secret else [])]
                sources = {**tenant.sources, "shopify": source.model_copy(update={"secrets": secrets})}
                tenants[existing] = tenant.model_copy(update={"sources": sources})
                continue
            shopify = ShopifyConfig(shop_domain=installation.shop, secrets=[app_secret or SecretStr("")])
            found = stored.get(installation.tenant)
            base = self._parse_stored(installation.tenant, found, problems) if found is not None else None
            if base is None:
                base = Tenant(name=installation.tenant, timezone=installation.timezone, loyalty=UnconfiguredPlatform())
            if found is None or "timezone" not in found.document:
                base = base.model_copy(update={"timezone": installation.timezone})
            loyalty = base.loyalty
            if isinstance(loyalty, UnconfiguredPlatform):  # chosen on the issue-13 page, before the store
                loyalty = self._installation_loyalty(installation)
            tenants[installation.tenant] = base.model_copy(
                update={"loyalty": loyalty, "sources": {**base.sources, "shopify": shopify}}
            )
            shops[installation.shop] = installation.tenant
        enterprises, conflicts = mews_enterprises(tenants)
        for conflict in conflicts:
            log.error("tenants: %s", conflict)
        self._tenants, self._shops, self._enterprises = tenants, shops, enterprises
        self._stored, self._problems = stored, problems
        self._secrets = redaction.configured_secrets(self.settings, tenants.values())
        redaction.install_log_redaction(self._secrets)

    def _parse_stored(self, name: str, record: StoredTenant, problems: dict[str, list[str]]) -> Tenant | None:
        """A stored tenant as a :class:`Tenant` (``None``, with its problems noted and logged, when
        it no longer validates, e.g. after an upgrade changed a rule: the pages show why)."""
        try:
            return parse_tenant_document(name, record.document, UnconfiguredPlatform())
        except ConfigError as exc:
            found = list(getattr(exc, "problems", [str(exc)]))
            problems[name] = found
            log.error("stored tenant %s is not served: %s", name, "; ".join(found))
            return None

    def _installation_loyalty(self, installation: Installation) -> PlatformConfig:
        assert self.store is not None
        table: dict[str, Any] | None = self.store.loyalty_table(installation.shop) if installation.has_loyalty else None
        if table is None:
            return UnconfiguredPlatform()
        return parse_loyalty(table, f"installation {installation.shop}.loyalty")
