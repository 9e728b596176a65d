"""The loyalty platforms registry: each platform's ``[loyalty]`` model, client and sandbox.

Adding a platform is one line here (plus its folder under ``connector/vendors/``); the platform
contract suite then tests it. Clients are imported when first built, never by the web tier.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from connector.parts import Registration, by_name, parse_tagged, vendor_parts
from connector.platforms.base import LoyaltyDestination, PlatformConfig
from connector.vendors.glu.config import GluConfig
from connector.vendors.loyaltylion.config import LoyaltyLionConfig
from connector.vendors.voucherify.config import VoucherifyConfig

if TYPE_CHECKING:
    from connector.settings import Tenant

PLATFORMS: dict[str, Registration[PlatformConfig]] = by_name(
    [
        Registration("glu", GluConfig, *vendor_parts("glu", "platform", "GluClient")),
        Registration("loyaltylion", LoyaltyLionConfig, *vendor_parts("loyaltylion", "platform", "LoyaltyLionClient")),
        Registration("voucherify", VoucherifyConfig, *vendor_parts("voucherify", "platform", "VoucherifyClient")),
    ]
)


def parse_loyalty(raw: Any, prefix: str) -> PlatformConfig:
    """Validate a ``[loyalty]`` table by its ``platform``; ``ValueError`` names each bad key."""
    return parse_tagged(raw, "platform", PLATFORMS, prefix)


def build_loyalty_destination(tenant: Tenant, *, timeout: float = 10.0, redis: Any = None) -> LoyaltyDestination:
    """The client for the tenant's ``loyalty.platform``.

    ``redis`` carries the shared rate budgets and attempt markers that the platforms without
    server-side dedup need.
    """
    client = PLATFORMS[tenant.loyalty.platform].client.load()
    return cast(
        LoyaltyDestination, client.from_config(tenant.loyalty, tenant=tenant.name, redis=redis, timeout=timeout)
    )
