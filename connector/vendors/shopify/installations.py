"""Shopify app installations in Redis: one per shop, its access token and loyalty table encrypted.

An installation is a tenant (see :mod:`connector.directory`): named from the shop handle, or
attached to the tenants-file tenant whose Shopify ``shop_domain`` it is. Every change bumps
:data:`VERSION_KEY`, which is how web and worker processes notice it without a restart.

Stored per shop in the hash :data:`INSTALLATIONS_KEY` (field: the shop domain) as JSON: the
:class:`Installation` fields, the access token encrypted (``token``) and the merchant's
``[loyalty]`` table encrypted whole (``loyalty``) under :class:`~connector.secretbox.SecretBox`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from redis import Redis

from connector.secretbox import SecretBox
from connector.tenant_store import VERSION_KEY
from connector.vendors.shopify.oauth import SHOP_DOMAIN, valid_shop

__all__ = ["SHOP_DOMAIN", "VERSION_KEY", "Installation", "InstallationStore", "shop_handle", "valid_shop"]

INSTALLATIONS_KEY = "connector:shopify:installations"
KEY_CHECK_KEY = "connector:shopify:key-check"


def shop_handle(shop: str) -> str:
    """``harbour-shop`` of ``harbour-shop.myshopify.com``."""
    return shop.split(".", 1)[0].lower()


def now() -> str:
    """The current time, ISO 8601 UTC."""
    return datetime.now(UTC).isoformat()


class Installation(BaseModel):
    """One shop's installation (no secrets: those are read with :meth:`InstallationStore.token`)."""

    model_config = ConfigDict(frozen=True)

    shop: str
    tenant: str
    scopes: list[str] = Field(default_factory=list)
    installed_at: str
    status: Literal["installed", "uninstalled"] = "installed"
    uninstalled_at: str | None = None
    timezone: str = "UTC"
    has_loyalty: bool = False

    @property
    def installed(self) -> bool:
        """Whether the app is installed now."""
        return self.status == "installed"


class InstallationStore:
    """The installations of one Redis, with the secrets sealed by ``box``."""

    def __init__(self, redis: Redis, box: SecretBox) -> None:
        self.redis = redis
        self.box = box

    @classmethod
    def open(cls, redis: Redis, secret_key: str, *, check: bool = True) -> InstallationStore:
        """The store, after checking that ``secret_key`` is the one its secrets were sealed with
        (``check=False``: later, with :meth:`check_key`, e.g. once Redis answers).

        Raises:
            WrongSecretKeyError: it is not (a start-up error).
        """
        store = cls(redis, SecretBox(secret_key, "shopify installation"))
        if check:
            store.check_key()
        return store

    def check_key(self) -> None:
        """Record the key's fingerprint the first time; afterwards it must match.

        Raises:
            WrongSecretKeyError: another key sealed the installations.
        """
        self.box.check(self.redis, KEY_CHECK_KEY)

    # -- reading ------------------------------------------------------------------------------

    def _record(self, shop: str) -> dict[str, Any] | None:
        raw = self.redis.hget(INSTALLATIONS_KEY, shop)
        if raw is None:
            return None
        record: dict[str, Any] = json.loads(raw)
        return record

    @staticmethod
    def _installation(record: dict[str, Any]) -> Installation:
        fields = {k: v for k, v in record.items() if k not in ("token", "loyalty")}
        return Installation(**fields, has_loyalty=bool(record.get("loyalty")))

    def get(self, shop: str) -> Installation | None:
        """The installation of ``shop`` (installed or not), or ``None``."""
        record = self._record(shop)
        return self._installation(record) if record else None

    def all(self) -> list[Installation]:
        """Every installation, installed or not, by shop."""
        records = self.redis.hgetall(INSTALLATIONS_KEY)
        return [self._installation(json.loads(raw)) for _, raw in sorted(records.items())]

    def installed(self) -> list[Installation]:
        """The shops that have the app installed now."""
        return [installation for installation in self.all() if installation.installed]

    def token(self, shop: str) -> str | None:
        """The shop's access token (``None`` when not installed)."""
        record = self._record(shop)
        if not record or not record.get("token"):
            return None
        return self.box.decrypt(record["token"])

    def loyalty_table(self, shop: str) -> dict[str, Any] | None:
        """The ``[loyalty]`` table the merchant chose (``None``: not chosen yet)."""
        record = self._record(shop)
        if not record or not record.get("loyalty"):
            return None
        table: dict[str, Any] = json.loads(self.box.decrypt(record["loyalty"]))
        return table

    def version(self) -> int:
        """The tenants version: changes whenever an installation does."""
        raw = self.redis.get(VERSION_KEY)
        return int(raw) if raw is not None else 0

    # -- writing ------------------------------------------------------------------------------

    def _write(self, shop: str, record: dict[str, Any]) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hset(INSTALLATIONS_KEY, shop, json.dumps(record, sort_keys=True))
            pipe.incr(VERSION_KEY)
            pipe.execute()

    def install(self, shop: str, tenant: str, scopes: list[str], token: str, *, timezone: str = "UTC") -> Installation:
        """Record (or renew) the installation of ``shop`` with its access token; a loyalty table
        chosen at an earlier installation is kept."""
        previous = self._record(shop) or {}
        record = {
            "shop": shop,
            "tenant": previous.get("tenant") or tenant,
            "scopes": sorted(scopes),
            "installed_at": now(),
            "status": "installed",
            "uninstalled_at": None,
            "timezone": timezone,
            "token": self.box.encrypt(token),
            "loyalty": previous.get("loyalty"),
        }
        self._write(shop, record)
        return self._installation(record)

    def set_loyalty(self, shop: str, table: dict[str, Any]) -> None:
        """Store the merchant's ``[loyalty]`` table (validated by the caller), sealed whole.

        Raises:
            KeyError: no installation of ``shop``.
        """
        record = self._record(shop)
        if record is None:
            raise KeyError(shop)
        record["loyalty"] = self.box.encrypt(json.dumps(table, sort_keys=True))
        self._write(shop, record)

    def mark_uninstalled(self, shop: str) -> Installation | None:
        """``app/uninstalled``: the token is deleted at once and the shop stops being served."""
        record = self._record(shop)
        if record is None:
            return None
        record.update(status="uninstalled", uninstalled_at=now(), token=None)
        self._write(shop, record)
        return self._installation(record)

    def delete(self, shop: str) -> bool:
        """``shop/redact``: forget the installation entirely (loyalty table included)."""
        with self.redis.pipeline() as pipe:
            pipe.hdel(INSTALLATIONS_KEY, shop)
            pipe.incr(VERSION_KEY)
            removed, _ = pipe.execute()
        return bool(removed)
