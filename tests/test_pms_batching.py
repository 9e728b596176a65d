"""PMS API calls per message, pinned at the minimum each vendor's API allows (see each NOTE.md).

Mews: one message names many reservations; ``getAll`` takes up to 1000 ids per filter
(``Limitation.Count`` up to 1000), so a message of 50 reservations costs one call per operation,
four in all. Apaleo and Cloudbeds: a webhook names one reservation and neither lists
reservations by id in the shape the sources read, so one reservation call per message (Apaleo's
token is fetched once per process).
"""

from __future__ import annotations

import json
from typing import Any

from pms_helpers import ENTERPRISE, MEWS_ACCESS_TOKEN, MEWS_CLIENT_TOKEN, envelope, fixture_json
from pydantic import SecretStr

from connector.pms.registry import fetch
from connector.sandbox.pms_samples import mews_batch, seed_mews_batch
from connector.sandbox.server import SandboxServer
from connector.vendors.apaleo.pms import forget_tokens
from connector.vendors.apaleo.source import ApaleoConfig
from connector.vendors.cloudbeds.source import CloudbedsConfig
from connector.vendors.mews.source import SOURCE as MEWS
from connector.vendors.mews.source import MewsConfig

OPERATIONS = [
    "reservations/getAll/2023-06-06",
    "customers/getAll",
    "resourceCategories/getAll",
    "orderItems/getAll",
]


def mews_config(sandbox: SandboxServer) -> MewsConfig:
    return MewsConfig(
        api_url=f"{sandbox.url}/mews",
        client_token=SecretStr(MEWS_CLIENT_TOKEN),
        access_token=SecretStr(MEWS_ACCESS_TOKEN),
        enterprise_id=ENTERPRISE,
    )


def http_calls(sandbox: SandboxServer, prefix: str, since: int) -> list[dict[str, Any]]:
    """The sandbox's logged requests under ``prefix`` after the ``since``-th request."""
    log = sandbox.sandboxes.connections.snapshot()
    newer = log["log"][-(log["requests"] - since) :] if log["requests"] > since else []
    return [entry for entry in newer if entry["path"].startswith(prefix)]


def seed_confirmed(sandbox: SandboxServer, vendor: str) -> dict[str, Any]:
    """The vendor's confirmed reservation fixture, held by its sandbox."""
    reservation: dict[str, Any] = fixture_json(vendor, "reservation_confirmed")
    sandbox.sandboxes.extra[vendor].seed(reservation)
    return reservation


def test_a_mews_message_of_fifty_reservations_costs_four_calls(sandbox: SandboxServer) -> None:
    mews = sandbox.sandboxes.extra["mews"]
    seed_mews_batch(mews, 50, enterprise_id=ENTERPRISE)
    body, _path = mews_batch(50, enterprise_id=ENTERPRISE)
    config = mews_config(sandbox)
    references = MEWS.references(envelope("mews"), json.loads(body), config)
    assert len(references) == 50
    before = sandbox.sandboxes.connections.snapshot()["requests"]

    fetched = fetch("mews", config, references)

    assert len(fetched["reservations"]) == 50 and len(fetched["customers"]) == 50
    calls = mews.state()["calls"]
    assert [c["operation"] for c in calls] == OPERATIONS
    assert len(calls[0]["ids"]) == 50 and len(calls[1]["ids"]) == 50
    assert len(http_calls(sandbox, "/mews/api/", before)) == 4


def test_more_than_a_thousand_mews_reservations_go_in_chunks_mews_accepts(sandbox: SandboxServer) -> None:
    mews = sandbox.sandboxes.extra["mews"]
    ids = [f"res-{n:04d}" for n in range(1001)]  # none held: only the reservation calls are made

    fetched = fetch("mews", mews_config(sandbox), ids)

    assert fetched["reservations"] == []
    assert [len(c["ids"]) for c in mews.state()["calls"]] == [1000, 1]  # the sandbox refuses more than 1000


def test_an_apaleo_message_costs_one_call_and_the_token_is_kept(sandbox: SandboxServer) -> None:
    reservation = seed_confirmed(sandbox, "apaleo")
    config = ApaleoConfig(
        token=SecretStr("apaleo-url-token"),
        client_id="sandbox-apaleo-client",
        client_secret=SecretStr("sandbox-apaleo-secret"),
        api_url=f"{sandbox.url}/apaleo",
        identity_url=f"{sandbox.url}/apaleo",
    )
    forget_tokens()
    before = sandbox.sandboxes.connections.snapshot()["requests"]
    for _ in range(3):  # three messages about the reservation
        assert [r["id"] for r in fetch("apaleo", config, [reservation["id"]])["reservations"]] == [reservation["id"]]
    calls = [c["path"] for c in http_calls(sandbox, "/apaleo/", before)]
    assert calls.count("/apaleo/connect/token") == 1
    assert calls.count(f"/apaleo/booking/v1/reservations/{reservation['id']}") == 3
    assert len(calls) == 4


def test_a_cloudbeds_message_costs_one_call(sandbox: SandboxServer) -> None:
    reservation = seed_confirmed(sandbox, "cloudbeds")
    config = CloudbedsConfig(
        token=SecretStr("cloudbeds-url-token"),
        api_url=f"{sandbox.url}/cloudbeds",
        api_key=SecretStr("sandbox-cloudbeds-key"),
        property_id=str(reservation["propertyID"]),
    )
    before = sandbox.sandboxes.connections.snapshot()["requests"]
    found = fetch("cloudbeds", config, [str(reservation["reservationID"])])
    assert [r["reservationID"] for r in found["reservations"]] == [reservation["reservationID"]]
    assert [c["path"] for c in http_calls(sandbox, "/cloudbeds/", before)] == ["/cloudbeds/getReservation"]
