"""The ESP registry: each email provider's ``[esp]`` model, client and sandbox.

Adding a provider is one line here (plus its folder under ``connector/vendors/``); the ESP
contract suite then tests it. Clients are built by :func:`connector.esps.base.build_esp_client`
and imported only then: this module is pure.
"""

from __future__ import annotations

from typing import Any

from connector.esps.config import EspBase
from connector.parts import Registration, by_name, parse_tagged, vendor_parts
from connector.vendors.activecampaign.config import ActiveCampaignConfig
from connector.vendors.braze.config import BrazeConfig
from connector.vendors.customerio.config import CustomerIoConfig
from connector.vendors.intercom.config import IntercomConfig
from connector.vendors.klaviyo.config import KlaviyoConfig
from connector.vendors.mailchimp.config import MailchimpConfig

ESPS: dict[str, Registration[EspBase]] = by_name(
    [
        Registration("klaviyo", KlaviyoConfig, *vendor_parts("klaviyo", "esp", "KlaviyoClient")),
        Registration("mailchimp", MailchimpConfig, *vendor_parts("mailchimp", "esp", "MailchimpClient")),
        Registration("braze", BrazeConfig, *vendor_parts("braze", "esp", "BrazeClient")),
        Registration("customerio", CustomerIoConfig, *vendor_parts("customerio", "esp", "CustomerIoClient")),
        Registration(
            "activecampaign", ActiveCampaignConfig, *vendor_parts("activecampaign", "esp", "ActiveCampaignClient")
        ),
        Registration("intercom", IntercomConfig, *vendor_parts("intercom", "esp", "IntercomClient")),
    ]
)


def parse_esp(raw: Any, prefix: str) -> EspBase:
    """Validate an ``[esp]`` table by its ``provider``; ``ValueError`` names each bad key."""
    return parse_tagged(raw, "provider", ESPS, prefix)


__all__ = ["ESPS", "parse_esp"]
