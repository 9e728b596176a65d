"""Email service providers that receive relayed ``customer.*`` loyalty events.

:func:`build_esp_client` makes the client for a tenant's ``[esp]`` table, with the account's
shared rate budget (named ``<provider>:<hash of the account credential>``, never the credential);
:func:`relay_skip_reason` is the ``events`` filter the web tier and the ingest job apply.
"""

from __future__ import annotations

from typing import Any

from connector.activities import hash_identifier
from connector.destinations.claims import AttemptMarkers
from connector.destinations.esp.activecampaign import ActiveCampaignClient
from connector.destinations.esp.base import EspClient, EspReceipt
from connector.destinations.esp.braze import BrazeClient
from connector.destinations.esp.config import (
    ActiveCampaignConfig,
    BrazeConfig,
    CustomerIoConfig,
    EspBase,
    IntercomConfig,
    KlaviyoConfig,
    MailchimpConfig,
)
from connector.destinations.esp.customerio import CustomerIoClient
from connector.destinations.esp.intercom import IntercomClient
from connector.destinations.esp.klaviyo import KlaviyoClient
from connector.destinations.esp.mailchimp import MailchimpClient
from connector.errors import FatalDestinationError
from connector.ratelimit import RateLimiter

CLIENTS: dict[str, type[EspClient]] = {
    "klaviyo": KlaviyoClient,
    "mailchimp": MailchimpClient,
    "braze": BrazeClient,
    "customerio": CustomerIoClient,
    "activecampaign": ActiveCampaignClient,
    "intercom": IntercomClient,
}


def relay_skip_reason(esp: EspBase | None, event_type: str) -> str | None:
    """Why a loyalty event of ``event_type`` is not relayed for this tenant (``None``: relay it)."""
    if esp is None:
        return "no ESP is configured for this tenant"
    return esp.skip_reason(event_type)


def rate_limiter(config: EspBase, redis: Any, provider: str) -> RateLimiter:
    """The account's shared budget: the tenant's ``rate_limit`` per second, else the ESP default."""
    limit, period = CLIENTS[provider].default_rate
    if config.rate_limit is not None:
        limit, period = config.rate_limit, 1.0
    return RateLimiter(redis, f"{provider}:{hash_identifier(config.account_secret())}", limit, period)


def client_arguments(config: EspBase, provider: str) -> tuple[str, str, dict[str, Any]]:
    """``(base URL, account credential, provider-specific keyword arguments)`` of an ``[esp]`` table's client."""
    if isinstance(config, KlaviyoConfig):
        key = config.api_key.get_secret_value()
        headers = {
            "Authorization": f"Klaviyo-API-Key {key}",
            "revision": config.revision,
            "Content-Type": "application/json",
        }
        return config.base_url, key, {"headers": headers}
    if isinstance(config, MailchimpConfig):
        key = config.api_key.get_secret_value()
        try:
            base = config.api_base
        except ValueError as exc:
            raise FatalDestinationError(str(exc), destination=provider) from None
        options = {
            "auth": ("connector", key),
            "list_id": config.list_id,
            "upsert_member": config.upsert_member,
            "status_if_new": config.status_if_new,
        }
        return base, key, options
    if isinstance(config, BrazeConfig):
        key = config.api_key.get_secret_value()
        return config.base_url, key, {"headers": {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}}
    if isinstance(config, CustomerIoConfig):
        key = config.api_key.get_secret_value()
        return config.base_url, key, {"auth": (config.site_id, key), "identify": config.identify}
    if isinstance(config, ActiveCampaignConfig):
        key = config.event_key.get_secret_value()
        return config.base_url, key, {"account_id": config.account_id, "event_key": key}
    if isinstance(config, IntercomConfig):
        token = config.access_token.get_secret_value()
        headers = {
            "Authorization": f"Bearer {token}",
            "Intercom-Version": config.version,
            "Content-Type": "application/json",
        }
        return config.base_url, token, {"headers": headers}
    raise FatalDestinationError(f"ESP provider {provider!r} is not supported", destination=provider)


def build_esp_client(config: EspBase, redis: Any, *, timeout: float = 10.0, tenant: str | None = None) -> EspClient:
    """The client for a tenant's ``[esp]`` table (``redis`` backs the rate budget and, given the
    ``tenant``, the attempt markers that let a client reconcile an attempt of unknown outcome)."""
    provider = str(getattr(config, "provider", ""))
    if provider not in CLIENTS:
        raise FatalDestinationError(f"ESP provider {provider!r} is not supported", destination=provider)
    limiter = rate_limiter(config, redis, provider)
    markers = AttemptMarkers(redis, tenant, provider) if tenant else None
    base_url, secret, options = client_arguments(config, provider)
    return CLIENTS[provider](base_url, limiter=limiter, timeout=timeout, secrets=(secret,), markers=markers, **options)


__all__ = ["CLIENTS", "EspClient", "EspReceipt", "build_esp_client", "relay_skip_reason"]
