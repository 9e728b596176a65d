"""Glu's ``[tenants.<t>.loyalty]`` table (``platform = "glu"``): pure pydantic, no I/O."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from connector.platforms.base import PlatformConfig
from connector.sources.base import HttpBaseUrl


class GluConfig(PlatformConfig):
    """``platform = "glu"``: base URL and ``x-api-key`` (the shape in PRODUCT.md).

    ``skip_shopify_orders``: Glu's own Shopify link creates "Shopify order" activities itself; a
    tenant using it sets ``true`` so that the connector does not send them too. Default ``false``:
    PRODUCT.md sends Shopify orders to Glu.
    """

    platform: Literal["glu"]
    base_url: HttpBaseUrl
    api_key: SecretStr | None = None
    skip_shopify_orders: bool = False

    def skip_reason(self, source: str) -> str | None:
        """Why activities from ``source`` are not sent to Glu, or ``None`` (every source by default)."""
        if source == "shopify" and self.skip_shopify_orders:
            return (
                "Glu creates Shopify order activities itself through its Shopify link; sending them "
                "again would award points twice (set loyalty.skip_shopify_orders = false to send them)"
            )
        return None
