"""The apps registry: the platforms a merchant installs the connector from (a Shopify app), with
the admin API client and the sandbox of each.

A registration's model is the source the app feeds (its installations become tenants with that
source, see :mod:`connector.directory`).
"""

from __future__ import annotations

from connector.parts import Registration, by_name, vendor_parts
from connector.sources.base import SourceConfig
from connector.vendors.shopify.source import ShopifyConfig

APPS: dict[str, Registration[SourceConfig]] = by_name(
    [Registration("shopify", ShopifyConfig, *vendor_parts("shopify", "admin", "ShopifyAdminClient"))]
)
