"""Inbound source adapters, registered explicitly by slug (the ``<source>`` URL segment)."""

from __future__ import annotations

from connector.sources import hotspotsystem, meraki, mist, purple, shopify, socialwifi, standard
from connector.sources.base import Source

SOURCES: dict[str, Source] = {
    "shopify": shopify.SOURCE,
    "standard": standard.SOURCE,
    "purple": purple.SOURCE,
    "meraki": meraki.SOURCE,
    "socialwifi": socialwifi.SOURCE,
    "mist": mist.SOURCE,
    "hotspotsystem": hotspotsystem.SOURCE,
}

__all__ = ["SOURCES", "Source"]
