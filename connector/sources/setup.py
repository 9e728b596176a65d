"""What a merchant does in a source vendor's console to connect it: the numbered steps the
Sources page shows beside the webhook URL (pure: standard library only).

Every source adapter carries its :class:`SetupGuide` as ``setup`` (written in its own
``connector/vendors/<vendor>/source.py``, next to the facts it relies on); the source contract
suite fails for a registered source without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Group = Literal["pms", "wifi", "events", "loyalty", "shop"]
"""Where a source is listed: hotel PMS, guest Wi-Fi, any signed sender, the loyalty platform's
own events (relayed to the ESP), the Shopify app."""

GROUP_TITLES: dict[Group, str] = {
    "pms": "Hotel PMS",
    "wifi": "Guest Wi-Fi",
    "events": "Any sender (Standard Webhooks)",
    "loyalty": "Your loyalty platform's events (relayed to your email provider)",
    "shop": "Shopify",
}


@dataclass(frozen=True)
class SetupGuide:
    """How to point one vendor's webhooks at the connector.

    ``steps`` name the vendor's console, the field that gets the webhook URL, the field that gets
    each secret and the events to tick, in the vendor's own words where its docs give them;
    ``unverified`` says which of that wording could not be checked against the vendor's docs.
    """

    title: str
    """The vendor's name as merchants know it."""
    group: Group
    console: str
    """Where the steps happen (the vendor's console, or whom to ask)."""
    steps: tuple[str, ...]
    docs: str
    """The vendor's page the steps follow."""
    unverified: str = ""
    addable: bool = True
    """Whether a merchant adds this source on the Sources page (Shopify's comes with the app)."""
