"""Inbound source adapters, registered explicitly by slug (the ``<source>`` URL segment)."""

from __future__ import annotations

from connector.sources import apaleo, cloudbeds, hostaway, mews, shopify, standard
from connector.sources.base import Source

SOURCES: dict[str, Source] = {
    "shopify": shopify.SOURCE,
    "standard": standard.SOURCE,
    "mews": mews.SOURCE,
    "apaleo": apaleo.SOURCE,
    "cloudbeds": cloudbeds.SOURCE,
    "hostaway": hostaway.SOURCE,
}

__all__ = ["SOURCES", "Source"]
