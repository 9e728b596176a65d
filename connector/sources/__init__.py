"""Inbound source adapters, registered explicitly by slug (the ``<source>`` URL segment)."""

from __future__ import annotations

from connector.sources import (
    apaleo,
    cloudbeds,
    hostaway,
    hotspotsystem,
    loyaltylion,
    meraki,
    mews,
    mist,
    purple,
    shopify,
    socialwifi,
    standard,
    voucherify,
)
from connector.sources.base import Source

SOURCES: dict[str, Source] = {
    "shopify": shopify.SOURCE,
    "standard": standard.SOURCE,
    "purple": purple.SOURCE,
    "meraki": meraki.SOURCE,
    "socialwifi": socialwifi.SOURCE,
    "mist": mist.SOURCE,
    "hotspotsystem": hotspotsystem.SOURCE,
    "mews": mews.SOURCE,
    "apaleo": apaleo.SOURCE,
    "cloudbeds": cloudbeds.SOURCE,
    "hostaway": hostaway.SOURCE,
    "voucherify": voucherify.SOURCE,
    "loyaltylion": loyaltylion.SOURCE,
}

__all__ = ["SOURCES", "Source"]
