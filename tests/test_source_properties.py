"""Property test over every source: mutated real fixtures never make identify or translation raise
anything but the connector's own errors (Hypothesis; modest and deterministic for CI).

* ``identify`` raises only ``PayloadError`` / ``UnsupportedEvent`` / ``SignatureError`` (400, ignored,
  401 at the intake) or returns an envelope;
* translation (``references``, ``to_activities``, ``to_loyalty_events``) raises only
  ``PayloadError`` / ``UnsupportedEvent`` or returns valid activities / events.

The sources themselves are tested, not the intake's and the worker's last-resort
``translation_guard``: every accident found here is fixed where it happens, with the field named.
"""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.activities import Activity, LoyaltyEvent
from connector.errors import PayloadError, SignatureError, UnsupportedEvent
from connector.settings import parse_tenants
from connector.sources.base import BodyError, Envelope, InboundRequest, TranslationContext, load_body
from connector.sources.registry import SOURCES
from fuzz import mutate, targets

RECEIVED_AT = "2026-11-25T10:00:00+00:00"
TENANT = parse_tenants(tomllib.loads(targets.tenants_toml("http://sandbox.invalid")))[targets.TENANT]
CONTEXT = TranslationContext(
    tenant=targets.TENANT, timezone=ZoneInfo("Europe/London"), platform="glu", now=datetime(2026, 6, 1, tzinfo=UTC)
)
EXAMPLES = 60  # per source: modest for CI; `make fuzz` runs the long version over HTTP

_VALUE = st.one_of(
    st.sampled_from(mutate.NASTY),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=5,
    ),
)
_OP = st.one_of(st.sampled_from(mutate.SIMPLE_OPS), st.tuples(st.just("set"), _VALUE))


@st.composite
def mutated(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with one to three mutations at paths into it."""
    candidates = mutate.paths(value)
    changes = draw(st.lists(st.tuples(st.sampled_from(candidates), _OP), min_size=1, max_size=3))
    return mutate.apply_all(value, changes)


def _fixtures(source: str, names: dict[str, tuple[str, ...]] = targets.WEBHOOK_FIXTURES) -> list[Any]:
    return [targets.fixture(source, name) for name in names[source]]


def _headers(source: str, raw: bytes) -> dict[str, str]:
    _, headers, _ = targets.signed(source, raw, 1)
    return {k.lower(): v for k, v in headers.items()}


def check_identify(source: str, raw: bytes) -> Envelope | None:
    adapter, config = SOURCES[source], TENANT.sources[source]
    request = InboundRequest(raw=raw, headers=_headers(source, raw), path_token="x", received_at=RECEIVED_AT)
    try:
        return adapter.identify(request, config, targets.TENANT)
    except (PayloadError, UnsupportedEvent, SignatureError):
        return None


def check_translation(source: str, envelope: Envelope, payload: Any, fetched: Any) -> int:
    """How many activities / events the payload made (0: refused with a connector error)."""
    adapter, config = SOURCES[source], TENANT.sources[source]
    try:
        if adapter.is_loyalty_event(envelope.event_type):
            events = adapter.to_loyalty_events(envelope, payload, CONTEXT, config)
            assert all(isinstance(e, LoyaltyEvent) for e in events)
            for event in events:
                LoyaltyEvent.model_validate(event.model_dump(mode="json"))
            return len(events)
        ids = adapter.references(envelope, payload, config)
        if ids is not None:
            assert isinstance(ids, list) and all(isinstance(i, str) for i in ids)
            payload = {"message": payload, "fetched": fetched}
        activities = adapter.to_activities(envelope, payload, CONTEXT, config)
        for activity in activities:
            assert isinstance(activity, Activity)
            Activity.model_validate(activity.model_dump(mode="json"))  # survives the job's JSON round trip
        return len(activities)
    except (PayloadError, UnsupportedEvent):
        return 0


def _run(source: str, body: Any, fetched: Any) -> int:
    if fetched is not None:  # a PMS answer as its API client reads it (JSON; too deep fails there)
        try:
            fetched = json.loads(mutate.dumps(fetched), parse_float=str)
        except (ValueError, RecursionError):
            return 0
    raw = targets.signed(source, mutate.dumps(body), 1)[2]
    envelope = check_identify(source, raw)
    try:
        payload = load_body(raw)  # what the worker reads from the stored text
    except BodyError:
        return 0
    if envelope is None:  # still translate: a stored job may predate a stricter identify
        envelope = Envelope(source, targets.TENANT, _event_type(source, payload), "d-1", "2026-06-01T00:00:00+00:00")
    return check_translation(source, envelope, payload, fetched)


def _event_type(source: str, payload: Any) -> str:
    """A plausible event type for translating a body identify refused."""
    known = {"shopify": "orders/paid", "mews": "general", "hotspotsystem": "login", "purple": "login"}
    if source in known:
        return known[source]
    if isinstance(payload, dict) and isinstance(payload.get("type"), str):
        return str(payload["type"])
    return {"voucherify": "customer.rewarded", "loyaltylion": "customer.updated"}.get(source, "x")


SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_the_unmutated_fixtures_translate(source):
    """The mutations start from bodies that work: each fixture makes activities or events."""
    for body in _fixtures(source, targets.ACTIVE_FIXTURES):
        assert _run(source, body, targets.fetched_fixtures(source)) > 0, body


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_mutated_webhooks_raise_only_connector_errors(source):
    @SETTINGS
    @given(data=st.data())
    def prop(data: st.DataObject) -> None:
        body = data.draw(st.sampled_from(_fixtures(source)).flatmap(mutated))
        _run(source, body, targets.fetched_fixtures(source))

    prop()


@pytest.mark.parametrize("source", ["mews", "apaleo", "cloudbeds"])
def test_mutated_fetched_reservations_raise_only_connector_errors(source):
    fetched = targets.fetched_fixtures(source)
    body = _fixtures(source)[0]

    @SETTINGS
    @given(data=st.data())
    def prop(data: st.DataObject) -> None:
        _run(source, body, data.draw(mutated(fetched)))

    prop()


# -- issue 16 intake: the level-by-level depth walk decides as a plain recursive count does --
def _depth(value: Any) -> int:
    """Levels of arrays/objects in a parsed JSON value (0 for a scalar), by plain recursion."""
    if isinstance(value, dict):
        return 1 + max((_depth(child) for child in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(child) for child in value), default=0)
    return 0


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=2), children, max_size=3),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(value=_json_values, limit=st.integers(min_value=0, max_value=8))
def test_nested_too_deep_agrees_with_a_recursive_count(value: Any, limit: int) -> None:
    from connector.sources.base import nested_too_deep

    assert nested_too_deep(value, limit) == (_depth(value) > limit)


# -- end issue 16 intake --
