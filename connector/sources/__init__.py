"""Inbound source adapters, registered explicitly by slug (the ``<source>`` URL segment)."""

from __future__ import annotations

from connector.sources import loyaltylion, shopify, standard, voucherify
from connector.sources.base import Source

SOURCES: dict[str, Source] = {
    "shopify": shopify.SOURCE,
    "standard": standard.SOURCE,
    "voucherify": voucherify.SOURCE,
    "loyaltylion": loyaltylion.SOURCE,
}

__all__ = ["SOURCES", "Source"]
