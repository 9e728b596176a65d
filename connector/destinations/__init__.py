"""Outbound clients: loyalty platforms (and, later, email providers) on one HTTP base."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connector.destinations.base import LoyaltyDestination
from connector.destinations.config import GluConfig, LoyaltyLionConfig, VoucherifyConfig
from connector.destinations.glu import GluClient
from connector.destinations.loyaltylion import LoyaltyLionClient
from connector.destinations.voucherify import VoucherifyClient
from connector.errors import FatalDestinationError

if TYPE_CHECKING:
    from connector.settings import Tenant


def build_loyalty_destination(tenant: Tenant, *, timeout: float = 10.0, redis: Any = None) -> LoyaltyDestination:
    """The client for the tenant's ``loyalty.platform``.

    ``redis`` carries the shared rate budgets and attempt markers that LoyaltyLion and
    Voucherify need (they have no server-side dedup); Glu does without.
    """
    loyalty = tenant.loyalty
    if isinstance(loyalty, GluConfig):
        api_key = loyalty.api_key.get_secret_value() if loyalty.api_key else ""
        if not api_key:
            raise FatalDestinationError(f"tenants.{tenant.name}.loyalty.api_key is not set", destination="glu")
        return GluClient(loyalty.base_url, api_key, timeout=timeout)
    if redis is None:
        raise FatalDestinationError(f"{loyalty.platform} delivery needs Redis", destination=loyalty.platform)
    if isinstance(loyalty, LoyaltyLionConfig):
        return LoyaltyLionClient(loyalty, tenant=tenant.name, redis=redis, timeout=timeout)
    if isinstance(loyalty, VoucherifyConfig):
        return VoucherifyClient(loyalty, tenant=tenant.name, redis=redis, timeout=timeout)
    raise FatalDestinationError(  # pragma: no cover - the settings union admits nothing else
        f"loyalty platform {loyalty.platform!r} is not supported", destination=loyalty.platform
    )
