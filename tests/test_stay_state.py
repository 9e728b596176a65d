"""The stay state machine: pure reconciliation, and its atomic application on real Redis."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis import Redis

from connector.activities import Activity, Person
from connector.errors import UnsupportedEvent
from connector.sources.stay import StaySnapshot, StayState, group_stays, guest, implied_activities, reconcile
from connector.stays import apply_stay, load_state

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def snap(status: str, minutes: int = 0, reservation: str = "R1") -> StaySnapshot:
    return StaySnapshot(
        pms="testpms",
        property_id="P1",
        reservation_id=reservation,
        status=status,  # type: ignore[arg-type]
        guest=Person(email="guest@example.com"),
        booked_at=T0,
        updated_at=T0 + timedelta(minutes=minutes),
        check_in=datetime(2026, 6, 10, 15, tzinfo=UTC),
        check_out=datetime(2026, 6, 12, 11, tzinfo=UTC),
        checked_in_at=datetime(2026, 6, 10, 16, tzinfo=UTC) if status in {"Started", "Processed"} else None,
        checked_out_at=datetime(2026, 6, 12, 10, tzinfo=UTC) if status == "Processed" else None,
        total=38000,
        currency_code="GBP",
    )


def implied(status: str, minutes: int = 0) -> list[Activity]:
    return implied_activities(snap(status, minutes), tenant="harbour", source="testpms")


def run(*steps: tuple[str, int]) -> tuple[list[tuple[str, str, str | None]], StayState]:
    state = StayState()
    out: list[tuple[str, str, str | None]] = []
    for status, minutes in steps:
        emit, state = reconcile(state, implied(status, minutes))
        out += [(a.type, a.business_key, a.booking.status if a.booking else None) for a in emit]
    return out, state


KEY = "testpms:P1:R1"


def test_full_stay_in_order_emits_three():
    out, state = run(("Confirmed", 0), ("Started", 10), ("Processed", 20))
    assert out == [("Booking", KEY, "Confirmed"), ("Checked in", KEY, None), ("Checked out", KEY, None)]
    assert state.status == "Processed" and state.updates == 0


def test_checkout_first_emits_all_three_in_order_and_late_events_nothing():
    out, _ = run(("Processed", 20), ("Started", 10), ("Confirmed", 0), ("Processed", 20))
    assert out == [("Booking", KEY, "Processed"), ("Checked in", KEY, None), ("Checked out", KEY, None)]


def test_repeats_emit_nothing():
    out, _ = run(("Confirmed", 0), ("Confirmed", 0), ("Confirmed", 5))
    assert out == [("Booking", KEY, "Confirmed")]


def test_cancellation_is_a_booking_status_update_with_its_own_key():
    out, state = run(("Confirmed", 0), ("Canceled", 5), ("Canceled", 6))
    assert out == [("Booking", KEY, "Confirmed"), ("Booking", f"{KEY}:status:1", "Canceled")]
    assert state.status == "Canceled"


def test_reverted_check_in_updates_status_then_check_in_again_restores_it():
    out, _ = run(("Confirmed", 0), ("Started", 10), ("Confirmed", 11), ("Started", 12), ("Processed", 20))
    assert out == [
        ("Booking", KEY, "Confirmed"),
        ("Checked in", KEY, None),
        ("Booking", f"{KEY}:status:1", "Confirmed"),
        ("Booking", f"{KEY}:status:2", "Started"),
        ("Checked out", KEY, None),
    ]


def test_stale_snapshot_cannot_roll_status_back():
    out, state = run(("Confirmed", 0), ("Canceled", 10), ("Confirmed", 5))
    assert [o[1] for o in out] == [KEY, f"{KEY}:status:1"]
    assert state.status == "Canceled"


def test_update_happens_at_the_snapshot_revision():
    state = StayState()
    _, state = reconcile(state, implied("Confirmed", 0))
    emit, _ = reconcile(state, implied("Canceled", 30))
    assert emit[0].happened_at == T0 + timedelta(minutes=30)
    assert emit[0].booking is not None and emit[0].booking.external_reference == KEY


def test_state_round_trips_through_json():
    _, state = run(("Confirmed", 0), ("Canceled", 5))
    assert StayState.from_json(state.to_json()) == state
    assert StayState.from_json(None) == StayState()


def test_group_stays_leaves_other_activities_alone():
    other = implied("Confirmed")[0].model_copy(update={"type": "Purchase", "attributes": {}})
    groups, others = group_stays([*implied("Processed"), other])
    assert list(groups) == [KEY] and len(groups[KEY]) == 3
    assert others == [other]


def test_guest_without_email_is_unsupported_and_counted_as_no_email():
    with pytest.raises(UnsupportedEvent) as caught:
        guest(None, "Ada", "Lovelace")
    assert caught.value.counter == "no_email"
    assert guest(" Ada@Example.COM ").email == "ada@example.com"


def writer(log: list[str]) -> Any:
    def write(pipe: Any, activity: Activity) -> str:
        pipe.rpush("test:emitted", f"{activity.type}|{activity.business_key}")
        log.append(activity.type)
        return activity.type

    return write


def test_apply_stay_persists_state_with_the_emission(redis: Redis):
    assert apply_stay(redis, "harbour", implied("Confirmed"), writer([])) == ["Booking"]
    assert apply_stay(redis, "harbour", implied("Confirmed"), writer([])) == []
    assert apply_stay(redis, "harbour", implied("Processed", 30), writer([])) == ["Checked in", "Checked out"]
    assert load_state(redis, "harbour", KEY).checked_out
    assert [e.decode() for e in redis.lrange("test:emitted", 0, -1)] == [
        f"Booking|{KEY}",
        f"Checked in|{KEY}",
        f"Checked out|{KEY}",
    ]
    # tenants are separate
    assert apply_stay(redis, "marina", implied("Confirmed"), writer([])) == ["Booking"]


def test_concurrent_applies_emit_each_transition_once(redis: Redis, redis_url: str):
    from connector.queue import connect

    barrier = threading.Barrier(8)

    def worker(status: str) -> None:
        client = connect(redis_url)
        barrier.wait()
        apply_stay(client, "harbour", implied(status, 20 if status == "Processed" else 10), writer([]))
        client.close()

    threads = [threading.Thread(target=worker, args=(s,)) for s in ["Started", "Processed"] * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    emitted = [e.decode() for e in redis.lrange("test:emitted", 0, -1)]
    assert sorted(emitted) == sorted([f"Booking|{KEY}", f"Checked in|{KEY}", f"Checked out|{KEY}"])
    assert emitted.index(f"Booking|{KEY}") < emitted.index(f"Checked in|{KEY}")
