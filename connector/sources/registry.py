"""The sources registry: every inbound source adapter, by slug (the ``<source>`` URL segment).

Adding a source is one line here (plus its folder under ``connector/vendors/`` and its fixtures
under ``tests/fixtures/<slug>/``); the source contract suite then tests it. Importing this module
imports only pure code (standard library and pydantic).
"""

from __future__ import annotations

from connector.sources.base import Source
from connector.vendors.apaleo.source import SOURCE as APALEO
from connector.vendors.cloudbeds.source import SOURCE as CLOUDBEDS
from connector.vendors.hostaway.source import SOURCE as HOSTAWAY
from connector.vendors.hotspotsystem.source import SOURCE as HOTSPOTSYSTEM
from connector.vendors.loyaltylion.source import SOURCE as LOYALTYLION
from connector.vendors.meraki.source import SOURCE as MERAKI
from connector.vendors.mews.source import SOURCE as MEWS
from connector.vendors.mist.source import SOURCE as MIST
from connector.vendors.purple.source import SOURCE as PURPLE
from connector.vendors.shopify.source import SOURCE as SHOPIFY
from connector.vendors.socialwifi.source import SOURCE as SOCIALWIFI
from connector.vendors.standard.source import SOURCE as STANDARD
from connector.vendors.voucherify.source import SOURCE as VOUCHERIFY

SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        SHOPIFY,
        STANDARD,
        PURPLE,
        MERAKI,
        SOCIALWIFI,
        MIST,
        HOTSPOTSYSTEM,
        MEWS,
        APALEO,
        CLOUDBEDS,
        HOSTAWAY,
        VOUCHERIFY,
        LOYALTYLION,
    )
}

__all__ = ["SOURCES", "Source"]
