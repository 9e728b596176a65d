"""Sample PMS traffic for the demo, the benchmark and the tests.

:func:`mews_batch` builds one Mews General Webhook message with ``n`` reservation events (plus
the ``CustomerAdded`` that accompanies each new guest), and :func:`mews_batch_data` the
Connector API data those ids resolve to, ready to seed into the Mews sandbox (in process with
:func:`seed_mews_batch`, or over HTTP by POSTing each list to ``/mews/_sandbox/<collection>``).
Ids are deterministic (UUID5 of the index), so a batch can be rebuilt anywhere.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

DEMO_TENANT = "demo"
DEMO_MEWS_TOKEN = "demo-mews-url-token"  # noqa: S105 - the demo tenant's sandbox token
DEMO_ENTERPRISE = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
_NS = uuid.UUID("6f1c9b52-8a57-4c8e-9a43-1b0e7d9f2c10")
SERVICE = "bd26d8db-86da-4f96-9efc-e5a4654a4a94"
CATEGORY = "773d5e42-de1e-43a0-9ce6-f940faf2303f"


def _id(kind: str, index: int, salt: str = "") -> str:
    return str(uuid.uuid5(_NS, f"{kind}:{salt}:{index}"))


def mews_batch(
    n: int,
    *,
    tenant: str = DEMO_TENANT,
    token: str = DEMO_MEWS_TOKEN,
    enterprise_id: str = DEMO_ENTERPRISE,
    salt: str = "",
) -> tuple[bytes, str]:
    """A General Webhook message with ``n`` reservations, and the URL path to POST it to.

    ``salt`` makes a different set of reservations (e.g. one per benchmark round).
    """
    events: list[dict[str, Any]] = []
    for i in range(n):
        events.append({"Discriminator": "ServiceOrderUpdated", "Value": {"Id": _id("reservation", i, salt)}})
        events.append({"Discriminator": "CustomerAdded", "Value": {"Id": _id("customer", i, salt)}})
    body = {"EnterpriseId": enterprise_id, "IntegrationId": str(uuid.uuid5(_NS, "integration")), "Events": events}
    return json.dumps(body).encode(), f"/webhooks/{tenant}/mews/{token}"


def mews_batch_data(
    n: int, *, enterprise_id: str = DEMO_ENTERPRISE, state: str = "Processed", salt: str = ""
) -> dict[str, list[dict[str, Any]]]:
    """Sandbox data for :func:`mews_batch`: every reservation in ``state`` with a guest email."""
    reservations, customers, items = [], [], []
    for i in range(n):
        rid, cid = _id("reservation", i, salt), _id("customer", i, salt)
        reservations.append(
            {
                "Id": rid,
                "EnterpriseId": enterprise_id,
                "ServiceId": SERVICE,
                "AccountId": cid,
                "AccountType": "Customer",
                "Number": str(1000 + i),
                "State": state,
                "Origin": "Connector",
                "CreatedUtc": "2026-05-01T09:12:00Z",
                "UpdatedUtc": "2026-06-12T09:41:00Z",
                "ScheduledStartUtc": "2026-06-10T14:00:00Z",
                "ActualStartUtc": "2026-06-10T15:06:41Z" if state in {"Started", "Processed"} else None,
                "ScheduledEndUtc": "2026-06-12T10:00:00Z",
                "ActualEndUtc": "2026-06-12T09:40:12Z" if state == "Processed" else None,
                "PersonCounts": [{"AgeCategoryId": _id("age", 0), "Count": 2}],
                "RequestedResourceCategoryId": CATEGORY,
            }
        )
        customers.append(
            {"Id": cid, "FirstName": "Guest", "LastName": f"Number {i}", "Email": f"guest{i}.{salt or 'x'}@example.com"}
        )
        items.append(
            {
                "Id": _id("item", i, salt),
                "ServiceOrderId": rid,
                "Amount": {"Currency": "GBP", "NetValue": 158.33, "GrossValue": 190.0, "TaxValues": []},
                "AccountingState": "Open",
            }
        )
    category = {"Id": CATEGORY, "ServiceId": SERVICE, "Names": {"en-US": "Deluxe Double"}}
    return {
        "reservations": reservations,
        "customers": customers,
        "resource_categories": [category],
        "order_items": items,
    }


def seed_mews_batch(mews_sandbox: Any, n: int, **kwargs: Any) -> None:
    """Seed a :class:`~connector.vendors.mews.sandbox.MewsSandbox` in process with :func:`mews_batch_data`."""
    for collection, items in mews_batch_data(n, **kwargs).items():
        mews_sandbox.seed(collection, *items)
