"""Outbound clients: loyalty platforms (and, later, email providers) on one HTTP base."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connector.destinations.base import LoyaltyDestination
from connector.destinations.glu import GluClient
from connector.errors import FatalDestinationError

if TYPE_CHECKING:
    from connector.settings import Tenant


def build_loyalty_destination(tenant: Tenant, *, timeout: float = 10.0) -> LoyaltyDestination:
    """The client for the tenant's ``loyalty.platform``."""
    loyalty = tenant.loyalty
    api_key = loyalty.api_key.get_secret_value() if loyalty.api_key else ""
    if loyalty.platform == "glu":
        if not api_key:
            raise FatalDestinationError(f"tenants.{tenant.name}.loyalty.api_key is not set", destination="glu")
        return GluClient(loyalty.base_url, api_key, timeout=timeout)
    raise FatalDestinationError(
        f"loyalty platform {loyalty.platform!r} is not supported yet", destination=loyalty.platform
    )
