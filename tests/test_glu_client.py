"""The Glu client and the shared status-to-error mapping, over real HTTP to the sandbox."""

from __future__ import annotations

from datetime import datetime

import pytest

from connector.activities import Activity, Booking, Person
from connector.errors import FatalDestinationError, RetriableDestinationError
from connector.vendors.glu.platform import GluClient, activity_body

ACTIVITY = Activity(
    type="Booking",
    tenant="harbour",
    source="mews",
    business_key="mews:ent-1:res-42",
    happened_at=datetime.fromisoformat("2026-05-01T10:12:00+01:00"),
    person=Person(email=" Guest@Example.COM ", first_name="Grace"),
    booking=Booking(
        check_in=datetime.fromisoformat("2026-06-10T15:00:00+01:00"),
        check_out=datetime.fromisoformat("2026-06-12T11:00:00+01:00"),
        status="Confirmed",
        number_of_guests=2,
        room_type="Deluxe",
        total=38000,
        currency_code="GBP",
        external_reference="res-42",
    ),
)


class MemoryContacts:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def get(self, email: str) -> str | None:
        return self.data.get(email)

    def set(self, email: str, contact_id: str) -> None:
        self.data[email] = contact_id


@pytest.fixture
def glu(sandbox):
    return GluClient(f"{sandbox.url}/glu", "sandbox-glu-key", timeout=0.5)


def test_activity_body_shape():
    body = activity_body(ACTIVITY, "1042")
    assert body == {
        "contact": 1042,
        "type": "Booking",
        "source": "mews",
        "happenedAt": "2026-05-01T10:12:00+01:00",
        "externalReference": "mews:ent-1:res-42",
        "booking": {
            "checkIn": "2026-06-10T15:00:00+01:00",
            "checkOut": "2026-06-12T11:00:00+01:00",
            "status": "Confirmed",
            "numberOfGuests": 2,
            "roomType": "Deluxe",
            "externalReference": "res-42",
            "total": 38000,
            "currencyCode": "GBP",
        },
    }


def test_deliver_creates_contact_then_dedups_on_type_and_reference(glu, sandbox):
    contacts = MemoryContacts()
    first = glu.deliver(ACTIVITY, contacts)
    second = glu.deliver(ACTIVITY, contacts)
    assert first.created and not second.created
    assert first.remote_id == second.remote_id
    assert contacts.data == {"guest@example.com": str(sandbox.sandboxes.glu.state()["contacts"][0]["id"])}
    checked_in = ACTIVITY.model_copy(update={"type": "Checked in", "booking": None})
    assert glu.deliver(checked_in, contacts).created  # same reference, other type: a new activity


def arm(sandbox, **fault):
    sandbox.sandboxes.glu.faults.arm(fault)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retriable(glu, sandbox, status):
    arm(sandbox, mode="status", status=status)
    with pytest.raises(RetriableDestinationError) as caught:
        glu.find_contact("a@example.com")
    assert caught.value.status == status


def test_429_carries_retry_after(glu, sandbox):
    arm(sandbox, mode="status", status=429, retry_after=7)
    with pytest.raises(RetriableDestinationError) as caught:
        glu.find_contact("a@example.com")
    assert caught.value.retry_after == 7.0


def test_timeout_and_dropped_connection_are_retriable(glu, sandbox):
    arm(sandbox, mode="slow", seconds=1.0)
    with pytest.raises(RetriableDestinationError, match="timed out"):
        glu.find_contact("a@example.com")
    arm(sandbox, mode="drop", count=2)  # a GET is sent once more on a fresh connection (connector.http)
    with pytest.raises(RetriableDestinationError, match="connection failed"):
        glu.find_contact("a@example.com")


def test_bad_key_is_fatal_and_redacted(sandbox):
    client = GluClient(f"{sandbox.url}/glu", "secret-key-that-is-wrong")
    with pytest.raises(FatalDestinationError) as caught:
        client.find_contact("a@example.com")
    assert caught.value.status == 403
    assert "secret-key-that-is-wrong" not in str(caught.value)


def test_validation_error_keeps_the_violations(glu):
    bad = ACTIVITY.model_copy(update={"type": "Teleported"})
    with pytest.raises(FatalDestinationError) as caught:
        glu.deliver(bad, MemoryContacts())  # type: ignore[arg-type]
    assert caught.value.status == 422
    assert "type: The value you selected is not a valid choice." in caught.value.body


def test_unreachable_platform_is_retriable():
    from connector.embedded_redis import free_port

    client = GluClient(f"http://127.0.0.1:{free_port()}", "k", timeout=0.5)
    with pytest.raises(RetriableDestinationError):
        client.find_contact("a@example.com")
