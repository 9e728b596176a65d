"""Tenants kept in Redis: written by the merchant pages, the operator's CLI and the Shopify install.

The tenants file stays the self-hosting engineers' source of truth (read-only in the pages); this
store holds the tenants onboarded without it. Both feed the same validated
:class:`~connector.settings.Tenant` model through :class:`~connector.directory.TenantDirectory`.

Each tenant is one field of the hash :data:`STORE_KEY` (field: the tenant name). Its value is the
whole record sealed under :class:`~connector.secretbox.SecretBox` (``CONNECTOR_SECRET_KEY``):

* ``document``: the tenant's table exactly as it would be written in the tenants file
  (``timezone``, ``loyalty``, ``sources``, ``esp``), secrets included: the record is encrypted
  whole, so nothing of it (not even the last four characters of a key) is readable in Redis;
* ``secrets``: per secret path (``loyalty.api_key``, ``sources.mews.client_token``) its last four
  characters and when it was set: what the pages show instead of the secret;
* ``created_at`` / ``updated_at``.

Every write bumps :data:`VERSION_KEY` (shared with the Shopify installations), which every web
and worker process reads at most once a second to notice a change without a restart.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis import Redis, WatchError

from connector.secretbox import SecretBox

STORE_KEY = "connector:tenants:store"
VERSION_KEY = "connector:tenants:version"
KEY_CHECK_KEY = "connector:tenants:key-check"
LAST_CHARACTERS = 4
RESERVED_NAMES = frozenset({"admin", "sign-in", "sign-out", "tenants", "static"})
"""Names a stored tenant cannot take: the merchant pages' own paths (``/app/admin``…)."""


def now() -> str:
    """The current time, ISO 8601 UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass
class StoredTenant:
    """One stored tenant: its tenants-file-shaped ``document`` and what the pages may show of its secrets."""

    name: str
    document: dict[str, Any]
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""

    def secret_hint(self, path: str) -> dict[str, str] | None:
        """``{"last4": …, "set_at": …}`` of the secret at ``path``, or ``None`` (never set)."""
        return self.secrets.get(path)

    def to_record(self) -> dict[str, Any]:
        """The JSON record that is sealed into Redis."""
        return {
            "document": self.document,
            "secrets": self.secrets,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def secret_hint(value: str, set_at: str | None = None) -> dict[str, str]:
    """What the pages show of a secret: its last four characters (none of a short one) and when."""
    last = value[-LAST_CHARACTERS:] if len(value) >= 3 * LAST_CHARACTERS else ""
    return {"last4": last, "set_at": set_at or now()}


class TenantStore:
    """The stored tenants of one Redis, sealed by ``box``."""

    def __init__(self, redis: Redis, box: SecretBox) -> None:
        self.redis = redis
        self.box = box

    @classmethod
    def open(cls, redis: Redis, secret_key: str, *, check: bool = True) -> TenantStore:
        """The store, after checking that ``secret_key`` is the one its records were sealed with
        (``check=False``: later, with :meth:`check_key`, e.g. once Redis answers).

        Raises:
            WrongSecretKeyError: it is not (a start-up error).
        """
        store = cls(redis, SecretBox(secret_key, "tenant store"))
        if check:
            store.check_key()
        return store

    def check_key(self) -> None:
        """Compare the key with the one the records were sealed with (opening writes nothing;
        the first write records it).

        Raises:
            WrongSecretKeyError: another key sealed them.
        """
        self.box.check(self.redis, KEY_CHECK_KEY, record=False)

    # -- reading ------------------------------------------------------------------------------

    def _open(self, name: str, raw: bytes | str) -> StoredTenant:
        record = json.loads(self.box.decrypt(raw.decode() if isinstance(raw, bytes) else raw))
        return StoredTenant(
            name=name,
            document=record.get("document") or {},
            secrets=record.get("secrets") or {},
            created_at=record.get("created_at", ""),
            updated_at=record.get("updated_at", ""),
        )

    def get(self, name: str) -> StoredTenant | None:
        """The stored tenant called ``name``, or ``None``."""
        raw = self.redis.hget(STORE_KEY, name)
        return self._open(name, raw) if raw is not None else None

    def all(self) -> dict[str, StoredTenant]:
        """Every stored tenant, by name."""
        records = self.redis.hgetall(STORE_KEY)
        opened = {}
        for key, raw in records.items():
            name = key.decode() if isinstance(key, bytes) else str(key)
            opened[name] = self._open(name, raw)
        return dict(sorted(opened.items()))

    def names(self) -> list[str]:
        """The stored tenants' names, sorted."""
        return sorted(k.decode() if isinstance(k, bytes) else str(k) for k in self.redis.hkeys(STORE_KEY))

    def version(self) -> int:
        """The tenants version: changes whenever a stored tenant or an installation does."""
        raw = self.redis.get(VERSION_KEY)
        return int(raw) if raw is not None else 0

    # -- writing ------------------------------------------------------------------------------

    def create(self, name: str, document: dict[str, Any]) -> StoredTenant:
        """Store a new tenant (its name checked by the caller against every other tenant).

        Raises:
            KeyError: a stored tenant already has that name.
            ValueError: the name is one of :data:`RESERVED_NAMES`.
        """
        if name in RESERVED_NAMES:
            raise ValueError(f"{name!r} is reserved (the pages' own paths: {', '.join(sorted(RESERVED_NAMES))})")
        stamp = now()
        tenant = StoredTenant(name=name, document=document, created_at=stamp, updated_at=stamp)
        with self.redis.pipeline() as pipe:
            self.box.record(pipe, KEY_CHECK_KEY)
            pipe.hsetnx(STORE_KEY, name, self.box.encrypt(json.dumps(tenant.to_record(), sort_keys=True)))
            pipe.incr(VERSION_KEY)
            _, created, _ = pipe.execute()
        if not created:
            raise KeyError(name)
        return tenant

    def update(
        self,
        name: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        secrets_set: Iterable[str] = (),
        secrets_removed: Iterable[str] = (),
        create: bool = False,
    ) -> StoredTenant:
        """Replace the document of ``name`` by ``change(document)``, atomically (another process's
        write in between makes this one start over on the new document, never overwrite it).

        ``secrets_set``: the secret paths ``change`` set (their hints are renewed from the new
        document); ``secrets_removed``: the paths it removed. ``create``: a missing tenant starts
        from an empty document (an installed Shopify shop's first setting).

        Raises:
            KeyError: no stored tenant ``name`` (and ``create`` is false).
        """
        set_paths, removed_paths = list(secrets_set), list(secrets_removed)
        while True:
            with self.redis.pipeline() as pipe:
                try:
                    pipe.watch(STORE_KEY)  # type: ignore[no-untyped-call]
                    raw = pipe.hget(STORE_KEY, name)
                    if raw is None and not create:
                        raise KeyError(name)
                    stamp = now()
                    tenant = self._open(name, raw) if raw is not None else StoredTenant(name, {}, created_at=stamp)
                    document = change(json.loads(json.dumps(tenant.document)))  # a deep copy to change
                    secrets = {k: v for k, v in tenant.secrets.items() if k not in removed_paths}
                    for path in set_paths:
                        value = value_at(document, path)
                        if isinstance(value, str) and value:
                            secrets[path] = secret_hint(value, stamp)
                    updated = StoredTenant(name, document, secrets, tenant.created_at or stamp, stamp)
                    pipe.multi()
                    self.box.record(pipe, KEY_CHECK_KEY)
                    pipe.hset(STORE_KEY, name, self.box.encrypt(json.dumps(updated.to_record(), sort_keys=True)))
                    pipe.incr(VERSION_KEY)
                    pipe.execute()
                    return updated
                except WatchError:
                    continue

    def delete(self, name: str) -> bool:
        """Forget the stored tenant ``name`` (its queued jobs then end ``ignored``)."""
        with self.redis.pipeline() as pipe:
            pipe.hdel(STORE_KEY, name)
            pipe.incr(VERSION_KEY)
            removed, _ = pipe.execute()
        return bool(removed)


def value_at(document: dict[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of ``document`` (``sources.mews.token``), or ``None``."""
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value
