"""Typed settings: process settings from the environment, tenants from a TOML file.

Any string in the tenants file written ``env:NAME`` is read from the environment variable
``NAME``. Everything is validated at start-up; errors name the offending key
(``tenants.harbour-hotels.sources.shopify.shop_domain: Field required``).
"""

from __future__ import annotations

import os
import re
import secrets as _secrets
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from redis.connection import parse_url

from connector.errors import ConfigError
from connector.esps.config import EspBase
from connector.esps.registry import parse_esp
from connector.platforms.base import PlatformConfig
from connector.platforms.registry import parse_loyalty
from connector.redis_url import SENTINEL_FORM, is_sentinel_url, parse_sentinel_url  # issue 15 deploy
from connector.sources.base import SourceConfig
from connector.sources.registry import SOURCES
from connector.vendors.mews.source import MewsConfig

TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
SHOPIFY_API_VERSION = "2026-10"
"""The Admin API version the app pins (Shopify releases one a quarter and supports each a year)."""
DEFAULT_RETRY_SCHEDULE = (10, 60, 300, 900, 3600, 10800, 21600, 43200, 86400)


class Tenant(BaseModel):
    """One merchant: timezone, loyalty platform, sources and (optionally) an ESP."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: str
    timezone: str = "UTC"
    loyalty: PlatformConfig  # the registered model its ``platform`` names (connector.platforms.registry)
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    esp: EspBase | None = None  # the registered model its ``provider`` names (connector.esps.registry)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The tenant's timezone as a ``ZoneInfo``."""
        return ZoneInfo(self.timezone)


_UNCHECKED = PlatformConfig(platform="unchecked")  # stands in for a loyalty table that failed its own checks

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigProblemsError(ConfigError):
    """Every problem found in one pass over the environment and the tenants file."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def config_problems(exc: ConfigError) -> list[str]:
    """The separate problems a ``ConfigError`` reports (one per line when printed)."""
    return list(exc.problems) if isinstance(exc, ConfigProblemsError) else [str(exc)]


class _Pass:
    """Problems found so far, and the keys whose ``env:`` reference did not resolve.

    A value that could not be read from the environment is validated as an empty string; the
    errors that then follows at that key ("Field required", "not a URL"...) only repeat the
    missing variable, so they are left out.
    """

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.unresolved: list[str] = []

    def add(self, lines: list[str]) -> None:
        for line in lines:
            where = line.split(": ", 1)[0]
            if not any(where == key or where.startswith(key + ".") for key in self.unresolved):
                self.problems.append(line)


def _resolve_env(value: Any, path: str, found: _Pass) -> Any:
    """Replace ``env:NAME`` strings by the variable's value, recursively; note every bad one."""
    if isinstance(value, dict):
        return {k: _resolve_env(v, f"{path}.{k}", found) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, f"{path}.{i}", found) for i, v in enumerate(value)]
    if isinstance(value, str) and value.startswith("env:"):
        name = value[4:]
        if name in os.environ and ENV_NAME.match(name):
            return os.environ[name]
        if not name:
            problem = '"env:" must be followed by the name of an environment variable, e.g. "env:HARBOUR_GLU_KEY"'
        elif not ENV_NAME.match(name):
            problem = f'"env:{name}": {name!r} is not an environment variable name (letters, digits and _)'
        else:
            problem = f"environment variable {name} is not set"
        found.problems.append(f"{path}: {problem}")
        found.unresolved.append(path)
        return ""
    return value


def _format_validation(prefix: str, exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        parts = list(err["loc"])
        loc = ".".join(str(p) for p in parts)
        lines.append(f"{prefix}.{loc}: {err['msg']}" if loc else f"{prefix}: {err['msg']}")
    return lines


def _parse_tenant(
    name: str,
    raw: dict[str, Any],
    found: _Pass,
    *,
    resolve_env: bool = True,
    default_loyalty: PlatformConfig | None = None,
) -> Tenant | None:
    """One tenant table; every problem goes to ``found`` (``None`` when there was one).

    ``resolve_env``: read ``env:NAME`` strings from the environment (the tenants file only: a
    table typed into the merchant pages must never read the operator's environment).
    ``default_loyalty``: the platform of a table without ``[loyalty]`` (else that is a problem).
    """
    prefix = f"tenants.{name}"
    before = len(found.problems)
    if resolve_env:
        raw = _resolve_env(raw, prefix, found)
    sources: dict[str, SourceConfig] = {}
    raw_sources = raw.get("sources") or {}
    if not isinstance(raw_sources, dict):
        found.add([f"{prefix}.sources: must be a table of [tenants.{name}.sources.<source>] tables"])
        raw_sources = {}
    for slug, source_raw in raw_sources.items():
        adapter = SOURCES.get(slug)
        if adapter is None:
            found.add([f"{prefix}.sources.{slug}: unknown source (known: {', '.join(sorted(SOURCES))})"])
            continue
        try:
            sources[slug] = adapter.config_model.model_validate(
                source_raw, context={"tenant_timezone": raw.get("timezone", "UTC")}
            )
        except ValidationError as exc:
            found.add(_format_validation(f"{prefix}.sources.{slug}", exc))
    loyalty: PlatformConfig | None = None
    if "loyalty" not in raw and default_loyalty is not None:
        loyalty = default_loyalty
    elif "loyalty" not in raw:
        found.add([f"{prefix}.loyalty: Field required"])
    else:
        try:
            loyalty = parse_loyalty(raw["loyalty"], f"{prefix}.loyalty")
        except ValueError as exc:
            found.add(str(exc).split("; "))
    esp: EspBase | None = None
    if raw.get("esp") is not None:
        try:
            esp = parse_esp(raw["esp"], f"{prefix}.esp")
        except ValueError as exc:
            found.add(str(exc).split("; "))
    try:
        # Sources and ESP were validated above (a failed one is left out here, so the tenant's
        # own keys are still checked in this pass).
        # A loyalty table that failed its checks (reported above) is stood in for here.
        checked = {"sources": sources, "esp": esp, "loyalty": loyalty or _UNCHECKED}
        tenant = Tenant.model_validate({**raw, "name": name, **checked})
    except ValidationError as exc:
        found.add(_format_validation(prefix, exc))
        return None
    return tenant if len(found.problems) == before else None


def parse_tenant_document(name: str, document: dict[str, Any], default_loyalty: PlatformConfig) -> Tenant:
    """A stored tenant's document (the merchant pages', see :mod:`connector.tenant_store`) as a
    :class:`Tenant`, by the tenants file's rules except ``env:`` references, which are kept as
    typed; a document without ``loyalty`` gets ``default_loyalty``.

    Raises:
        ConfigProblemsError: naming every bad key (``tenants.<name>.loyalty.api_key: …``).
    """
    found = _Pass()
    if not TENANT_NAME.match(name):
        found.add([f"tenants.{name}: tenant names are lower-case letters, digits, '-' and '_'"])
    tenant = _parse_tenant(name, document, found, resolve_env=False, default_loyalty=default_loyalty)
    if found.problems or tenant is None:
        raise ConfigProblemsError(found.problems or [f"tenants.{name}: not a valid tenant"])
    return tenant


def mews_enterprises(tenants: dict[str, Tenant]) -> tuple[dict[str, str], list[str]]:
    """Mews enterprise id → tenant name, for the shared Mews URL (Mews allows one webhook URL per
    integration client: ``POST /webhooks/_mews/<token>`` routes each message by ``EnterpriseId``),
    and one problem per enterprise id that a second tenant claims too."""
    found: dict[str, str] = {}
    problems: list[str] = []
    for name in sorted(tenants):
        mews = tenants[name].sources.get("mews")
        enterprise = mews.enterprise_id if isinstance(mews, MewsConfig) else None
        if not enterprise:
            continue
        other = found.get(enterprise)
        if other is not None:
            problems.append(
                f"tenants.{name}.sources.mews.enterprise_id: enterprise {enterprise!r} is also "
                f"tenants.{other}.sources.mews.enterprise_id; the shared Mews URL routes an enterprise to one tenant"
            )
            continue
        found[enterprise] = name
    return found, problems


def parse_tenants(document: dict[str, Any]) -> dict[str, Tenant]:
    """Validate a parsed tenants document into ``Tenant`` objects.

    Raises:
        ConfigProblemsError: naming every bad key of every tenant, in one pass.
    """
    found = _Pass()
    for key in sorted(set(document) - {"tenants"}):
        found.add([f"{key}: unknown top-level table (expected [tenants.<name>])"])
    tenants: dict[str, Tenant] = {}
    raw_tenants = document.get("tenants") or {}
    if not isinstance(raw_tenants, dict):
        found.add(["tenants: must be a table of [tenants.<name>] tables"])
        raw_tenants = {}
    for name, raw in raw_tenants.items():
        prefix = f"tenants.{name}"
        if not TENANT_NAME.match(name):
            found.add([f"{prefix}: tenant names are lower-case letters, digits, '-' and '_'"])
        if not isinstance(raw, dict):
            found.add([f"{prefix}: must be a table"])
            continue
        tenant = _parse_tenant(name, raw, found)
        if tenant is not None:
            tenants[name] = tenant
    found.add(mews_enterprises(tenants)[1])
    if found.problems:
        raise ConfigProblemsError(found.problems)
    return tenants


def load_tenants(path: Path) -> dict[str, Tenant]:
    """Read and validate the tenants file."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"tenants file {path} not found (set CONNECTOR_TENANTS_FILE)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"tenants file {path}: {exc}") from None
    return parse_tenants(document)


class Settings(BaseSettings):
    """Process settings from the environment (see the README's configuration table)."""

    model_config = SettingsConfigDict(env_prefix="CONNECTOR_", extra="ignore", frozen=True)

    redis_url: str = Field(default="redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
    secret_key: SecretStr = Field(default_factory=lambda: SecretStr(_secrets.token_urlsafe(32)))
    tenants_file: Path = Path("config/tenants.toml")
    admin_password: SecretStr | None = None
    retry_schedule: Annotated[tuple[int, ...], NoDecode] = DEFAULT_RETRY_SCHEDULE
    dedup_ttl: int = Field(default=259200, ge=1)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    http_timeout: float = Field(default=10.0, gt=0)
    queue_prefix: str = ""
    # The Shopify app (enabled by SHOPIFY_API_KEY; see the README's "Install as a Shopify app").
    shopify_api_key: str | None = Field(default=None, validation_alias="SHOPIFY_API_KEY")
    shopify_api_secret: SecretStr | None = Field(default=None, validation_alias="SHOPIFY_API_SECRET")
    shopify_scopes: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("read_orders", "read_customers"), validation_alias="SHOPIFY_SCOPES"
    )
    shopify_api_version: str = Field(
        default=SHOPIFY_API_VERSION, validation_alias="SHOPIFY_API_VERSION", pattern=r"^\d{4}-\d{2}$"
    )
    shopify_admin_url: str = Field(default="https://{shop}", validation_alias="CONNECTOR_SHOPIFY_ADMIN_URL")
    public_url: str | None = None
    shopify_reconcile_interval: int = Field(
        default=3600, ge=60, validation_alias="CONNECTOR_SHOPIFY_RECONCILE_INTERVAL"
    )
    # The shared Mews URL's token (POST /webhooks/_mews/<token>); unset: that URL answers 404.
    mews_webhook_token: SecretStr | None = None
    # -- issue 15 trace: days the trace's records are kept (unset: as long as their jobs, 7/90) --
    trace_retention_days: int | None = Field(default=None, ge=1, le=3650)
    # -- end issue 15 trace --
    # -- issue 16 jobs: seconds a finished ingest/delivery/relay job is kept (0: deleted at once) --
    finished_job_retention: int = Field(default=0, ge=0, le=7 * 24 * 3600)
    # -- end issue 16 jobs --

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        # -- issue 15 deploy: a Sentinel set (redis+sentinel://...) is validated by its own parser --
        if is_sentinel_url(value):
            try:
                parse_sentinel_url(value)
            except ValueError as exc:
                raise ValueError(f"not a usable Redis Sentinel URL ({SENTINEL_FORM}): {exc}") from None
            return value
        # -- end issue 15 deploy --
        try:
            parse_url(value)  # type: ignore[no-untyped-call]  # what Redis.from_url does: scheme, host, port, db, options
        except ValueError as exc:
            raise ValueError(f"not a usable Redis URL: {exc}") from None
        return value

    @field_validator("retry_schedule", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                parsed = tuple(int(part) for part in value.split(",") if part.strip())
            except ValueError:
                raise ValueError("comma-separated whole seconds, e.g. 10,60,300") from None
            if not parsed or any(p < 0 for p in parsed):
                raise ValueError("needs at least one non-negative number of seconds")
            return parsed
        return value

    @field_validator("mews_webhook_token")
    @classmethod
    def _url_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None  # empty: no shared Mews URL
        if "/" in value.get_secret_value():
            raise ValueError("the token is one URL path segment: it cannot contain '/'")
        return value

    @field_validator("shopify_scopes", mode="before")
    @classmethod
    def _scopes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("shopify_admin_url")
    @classmethod
    def _admin_template(cls, value: str) -> str:
        if "{shop}" not in value or not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL template containing {shop}, e.g. https://{shop}")
        return value.rstrip("/")

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("must be the https origin Shopify reaches (http only for 127.0.0.1 / localhost)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _shopify_app(self) -> Settings:
        if self.shopify_api_key:
            missing = [
                name
                for name, value in (
                    ("SHOPIFY_API_SECRET", self.shopify_api_secret),
                    ("CONNECTOR_PUBLIC_URL", self.public_url),
                )
                if not value
            ]
            if "secret_key" not in self.model_fields_set:
                missing.append("CONNECTOR_SECRET_KEY (a stable key: it seals the shops' access tokens)")
            if missing:
                raise ValueError(f"the Shopify app (SHOPIFY_API_KEY) also needs {', '.join(missing)}")
        return self

    @property
    def tenant_store_enabled(self) -> bool:
        """Whether tenants may be kept in Redis (the merchant pages' store): it needs a stable
        ``CONNECTOR_SECRET_KEY``, which seals them."""
        return "secret_key" in self.model_fields_set and bool(self.secret_key.get_secret_value())

    @property
    def shopify_app_enabled(self) -> bool:
        """Whether the connector runs as a Shopify app (``SHOPIFY_API_KEY`` is set)."""
        return bool(self.shopify_api_key)

    def shopify_admin(self, shop: str) -> str:
        """The admin origin of ``shop`` (``CONNECTOR_SHOPIFY_ADMIN_URL`` with ``{shop}`` filled in)."""
        return self.shopify_admin_url.replace("{shop}", shop)

    @cached_property
    def tenants(self) -> dict[str, Tenant]:
        """The validated tenants (read once per process)."""
        return load_tenants(self.tenants_file)

    @cached_property
    def mews_enterprises(self) -> dict[str, str]:
        """Mews enterprise id → tenant name for the shared Mews URL (built once, by ``load_settings``)."""
        return mews_enterprises(self.tenants)[0]


def _unreachable_mews(settings: Settings) -> list[str]:
    """A Mews source without its own ``token`` is reached through the shared URL only."""
    if settings.mews_webhook_token is not None:
        return []
    return [
        f"tenants.{name}.sources.mews: no token, and CONNECTOR_MEWS_WEBHOOK_TOKEN (the shared Mews URL) is not "
        "set: no URL reaches this source"
        for name, tenant in sorted(settings.tenants.items())
        if isinstance(mews := tenant.sources.get("mews"), MewsConfig) and mews.token is None
    ]


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment and read the tenants file, now (not at the first webhook).

    Raises:
        ConfigProblemsError: every problem of the environment and of the tenants file, in one pass.
    """
    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            if not loc:  # a check across settings (the Shopify app's): the message names them
                problems.append(str(err["msg"]).removeprefix("Value error, "))
                continue
            name = loc if loc.startswith(("REDIS_URL", "SHOPIFY_", "CONNECTOR_")) else f"CONNECTOR_{loc.upper()}"
            problems.append(f"{name}: {err['msg']}")
    # The tenants file is checked even when the environment is not valid: one pass reports all.
    tenants_file = (
        settings.tenants_file
        if settings is not None
        else Path(overrides.get("tenants_file") or os.environ.get("CONNECTOR_TENANTS_FILE") or "config/tenants.toml")
    )
    try:
        if settings is not None:
            settings.tenants  # noqa: B018 - read and validated once, here
            settings.mews_enterprises  # noqa: B018 - the shared Mews URL's lookup, built once, here
            problems.extend(_unreachable_mews(settings))
        else:
            load_tenants(tenants_file)
    except ConfigError as exc:
        problems.extend(config_problems(exc))
    if problems or settings is None:
        raise ConfigProblemsError(problems)
    return settings
