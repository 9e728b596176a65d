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
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from connector.destinations.esp.config import EspBase, parse_esp
from connector.errors import ConfigError
from connector.sources import SOURCES
from connector.sources.base import HttpBaseUrl, SourceConfig

TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
DEFAULT_RETRY_SCHEDULE = (10, 60, 300, 900, 3600, 10800, 21600, 43200, 86400)


class LoyaltyConfig(BaseModel):
    """``[tenants.<t>.loyalty]``: the platform that receives activities."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: Literal["glu", "loyaltylion", "voucherify"]
    base_url: HttpBaseUrl
    api_key: SecretStr | None = None


class Tenant(BaseModel):
    """One merchant: timezone, loyalty platform, sources and (optionally) an ESP."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: str
    timezone: str = "UTC"
    loyalty: LoyaltyConfig
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    esp: EspBase | None = None  # one of the provider models in destinations/esp/config.py

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


def _resolve_env(value: Any, path: str) -> Any:
    """Replace ``env:NAME`` strings by the variable's value, recursively."""
    if isinstance(value, dict):
        return {k: _resolve_env(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str) and value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ConfigError(f"{path}: environment variable {name} is not set")
        return os.environ[name]
    return value


def _format_validation(prefix: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        lines.append(f"{prefix}.{loc}: {err['msg']}" if loc else f"{prefix}: {err['msg']}")
    return "; ".join(lines)


def parse_tenants(document: dict[str, Any]) -> dict[str, Tenant]:
    """Validate a parsed tenants document into ``Tenant`` objects.

    Raises:
        ConfigError: naming the first bad key(s).
    """
    unknown_top = sorted(set(document) - {"tenants"})
    if unknown_top:
        raise ConfigError(f"{unknown_top[0]}: unknown top-level table (expected [tenants.<name>])")
    tenants: dict[str, Tenant] = {}
    for name, raw in (document.get("tenants") or {}).items():
        prefix = f"tenants.{name}"
        if not TENANT_NAME.match(name):
            raise ConfigError(f"{prefix}: tenant names are lower-case letters, digits, '-' and '_'")
        if not isinstance(raw, dict):
            raise ConfigError(f"{prefix}: must be a table")
        raw = _resolve_env(raw, prefix)
        sources: dict[str, SourceConfig] = {}
        for slug, source_raw in (raw.get("sources") or {}).items():
            adapter = SOURCES.get(slug)
            if adapter is None:
                raise ConfigError(f"{prefix}.sources.{slug}: unknown source (known: {', '.join(sorted(SOURCES))})")
            try:
                sources[slug] = adapter.config_model.model_validate(
                    source_raw, context={"tenant_timezone": raw.get("timezone", "UTC")}
                )
            except ValidationError as exc:
                raise ConfigError(_format_validation(f"{prefix}.sources.{slug}", exc)) from None
        esp: EspBase | None = None
        if raw.get("esp") is not None:
            try:
                esp = parse_esp(raw["esp"], f"{prefix}.esp")
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        try:
            tenants[name] = Tenant.model_validate({**raw, "name": name, "sources": sources, "esp": esp})
        except ValidationError as exc:
            raise ConfigError(_format_validation(prefix, exc)) from None
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

    @cached_property
    def tenants(self) -> dict[str, Tenant]:
        """The validated tenants (read once per process)."""
        return load_tenants(self.tenants_file)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, turning validation errors into ``ConfigError``."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            name = "REDIS_URL" if loc == "REDIS_URL" else f"CONNECTOR_{loc.upper()}"
            lines.append(f"{name}: {err['msg']}")
        raise ConfigError("; ".join(lines)) from None
    settings.tenants  # noqa: B018 - validate the tenants file now, not at the first webhook
    return settings
