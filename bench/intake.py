"""The intake scenario's bodies and its paced run (``python -m bench --only intake``, issue 16).

* :func:`order_body`: a Shopify ``orders/paid`` body of about the size asked for. The sample order
  is 1 KB; real orders are 5-20 KB, mostly line items, so a large body repeats line items shaped
  like Shopify's (title, SKU, vendor, price set, tax lines, properties) until it is big enough.
* :func:`paced_run`: webhooks sent at a steady rate (half of the measured peak) rather than as
  fast as the server answers, for the latency a sender sees when the intake is not saturated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bench.slow import PacedResult, send_paced

SMALL_BYTES = 1_000
LARGE_BYTES = 15_000
PACED_DEADLINE = 2.0
"""Seconds a paced webhook may take before it counts as unanswered (far above the 20 ms target)."""


def line_item(number: int) -> dict[str, Any]:
    """One order line shaped like Shopify's (the fields that make most of a real order's bytes)."""
    price = f"{number % 90 + 10}.00"
    money = {"amount": price, "currency_code": "GBP"}
    return {
        "id": 10_000 + number,
        "admin_graphql_api_id": f"gid://shopify/LineItem/{10_000 + number}",
        "title": f"Spa voucher, {number} treatments",
        "name": f"Spa voucher, {number} treatments - Gift box",
        "sku": f"SPA-{number:05d}",
        "vendor": "Harbour Hotels",
        "quantity": 1,
        "price": price,
        "price_set": {"shop_money": money, "presentment_money": money},
        "requires_shipping": False,
        "taxable": True,
        "tax_lines": [{"title": "VAT", "price": "0.00", "rate": 0.2, "channel_liable": False}],
        "properties": [{"name": "Message", "value": "Happy birthday, enjoy the spa day!"}],
    }


def order_body(order: dict[str, Any], body_bytes: int) -> bytes:
    """``order`` as JSON, with line items added until the body is at least ``body_bytes`` long."""
    body = json.dumps(order).encode()
    if len(body) >= body_bytes:
        return body
    items = list(order.get("line_items", []))
    while len(body) < body_bytes:
        items.append(line_item(len(items)))
        body = json.dumps({**order, "line_items": items}).encode()
    return body


@dataclass
class PacedFigures:
    """One paced run: the rate asked for and what the sender saw."""

    label: str
    rate: float
    result: PacedResult

    def line(self) -> str:
        """One line of results."""
        return (
            f"  {self.label:<44} {self.rate:6.0f} req/s paced: p50 {self.result.p(0.5):6.2f} ms   "
            f"p99 {self.result.p(0.99):6.2f} ms   answered {self.result.answered}/{self.result.sent}   "
            f"statuses {dict(sorted(self.result.statuses.items()))}   sender at most "
            f"{self.result.behind * 1000:.1f} ms behind its schedule"
        )


def paced_run(label: str, port: int, payloads: list[bytes], rate: float) -> PacedFigures:
    """Send ``payloads`` to ``port`` at ``rate`` per second (each on its own connection)."""
    return PacedFigures(label, rate, send_paced("127.0.0.1", port, payloads, rate, PACED_DEADLINE))
