"""Malformed input (issue 11, items 6 and 7): never a 5xx at the intake; a job that cannot be
translated fails once, with a PayloadError naming the field, and burns no retries.

Every case is a minimal input that answered 500 (or failed a job with a bare Python error)
before; the last test is a short version of ``make fuzz`` over every source.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from rq.registry import FailedJobRegistry

from connector.queue import INGEST_QUEUE, fetch_job, get_queue
from fuzz import mutate, targets
from fuzz.targets import signed, unsigned

DEEP = b"[" * 2000 + b"]" * 2000


@pytest.fixture
def app_client(env: Any, sandbox: Any) -> Any:
    from connector.web import create_app

    return create_app(env(targets.tenants_toml(sandbox.url))).test_client()


def post(client: Any, source: str, body: bytes, *, sign: bool = True, n: int = 1) -> Any:
    if sign:
        path, headers, body = signed(source, body, n)
    else:
        path, headers = unsigned(source, n)
    return client.post(path, data=body, headers=headers)


def fixture_with(source: str, name: str, change: Any) -> bytes:
    """A fixture with ``change(body)`` applied, as the signed sender would send it."""
    body = targets.fixture(source, name)
    change(body)
    return mutate.dumps(body)


def assert_clean(response: Any) -> None:
    assert response.status_code < 500, response.data
    assert response.is_json, response.data
    if response.status_code >= 400:
        assert set(response.json["error"]) == {"code", "message"} and response.json["error"]["message"]


def job_failures(redis: Any) -> list[str]:
    """The last line (exception and reason) of every failed ingest job."""
    registry = FailedJobRegistry(queue=get_queue(redis, INGEST_QUEUE))
    lines = []
    for job_id in registry.get_job_ids():
        result = fetch_job(redis, job_id).latest_result()
        lines.append(((result.exc_string if result else "") or "").strip().splitlines()[-1])
    return lines


@pytest.mark.parametrize(
    ("source", "body", "sign", "status", "code"),
    [
        ("meraki", b'{"secret": "\\ud800"}', False, 401, "invalid_signature"),  # a lone surrogate as the secret
        ("meraki", DEEP, False, 401, "invalid_signature"),  # too deep to find the secret in
        (
            "meraki",
            b'{"secret": "' + targets.table("meraki")["secret"].encode() + b'", "data": ' + DEEP + b"}",
            False,
            401,
            None,
        ),
        ("purple", b'{"user": {"email": "a@b.c"}, "timestamp": 1' + b"0" * 400 + b"}", True, 400, "invalid_json"),
        ("purple", b'{"user": {"email": "a@b.c"}, "timestamp": "1' + b"0" * 400 + b'"}', True, 400, "invalid_payload"),
        (
            "loyaltylion",
            json.dumps(
                {
                    "id": "1",
                    "topic": "program_events/customer.tier_upgraded",
                    "payload": {"properties": {"customer": "x"}},
                }
            ).encode(),
            True,
            400,
            "invalid_payload",
        ),
        (
            "apaleo",
            json.dumps({"id": "1", "topic": "Reservation", "type": "created", "data": "s"}).encode(),
            True,
            400,
            "invalid_payload",
        ),
        (
            "apaleo",
            json.dumps({"id": "1", "topic": "Reservation", "type": ["x"], "data": {"entityId": "R"}}).encode(),
            True,
            400,
            "invalid_payload",
        ),
        ("cloudbeds", json.dumps({"event": ["x"], "reservationID": "1"}).encode(), True, 200, None),
        ("mews", json.dumps({"Events": [{"Discriminator": ["x"]}]}).encode(), True, 200, None),
        ("shopify", b'{"id": 1, "ratio": NaN}', True, 400, "invalid_json"),  # NaN is not JSON
        ("shopify", b'{"id": 1e400}', True, 400, "invalid_json"),  # a number no float holds
        ("standard", b"[" * 65 + b"]" * 65, True, 400, "too_deep"),  # orjson reads it; the limit refuses
        ("standard", b"[" * 1000 + b"]" * 1000, True, 400, "too_deep"),  # orjson reads it, json did not
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 15 else None,
)
def test_minimal_cases_are_never_5xx(app_client, redis, source, body, sign, status, code):
    response = post(app_client, source, body, sign=sign)
    assert_clean(response)
    assert response.status_code == status, response.data
    if code:
        assert response.json["error"]["code"] == code
    assert get_queue(redis, INGEST_QUEUE).count == 0


@pytest.mark.parametrize("source", targets.SOURCES)
def test_a_deep_body_with_valid_credentials_is_400_too_deep(app_client, redis, source):
    response = post(app_client, source, DEEP)
    assert_clean(response)
    if source == "meraki":  # the credential is inside the body: it cannot be found, so 401
        assert response.status_code == 401
    else:
        assert response.status_code == 400 and response.json["error"]["code"] == "too_deep", response.data
    assert get_queue(redis, INGEST_QUEUE).count == 0


def _purple_surrogate(body: dict[str, Any]) -> None:
    body["user"]["email"] = "ada\ud800@example.com"


def _voucherify_surrogate(body: dict[str, Any]) -> None:
    body["event"]["id"] = "evcus_\ud800"


@pytest.mark.parametrize(
    ("source", "name", "change"),
    [
        ("purple", "login", _purple_surrogate),
        ("voucherify", "customer_loyalty_tier_upgraded_v2024", _voucherify_surrogate),
    ],
)
def test_a_lone_surrogate_is_read_as_a_replacement_character_at_the_intake_and_in_the_worker(
    app_client, redis, work, source, name, change
):
    body = fixture_with(source, name, change)
    assert b"\\ud800" in body
    response = post(app_client, source, body)
    assert_clean(response)
    assert response.status_code == 202, response.data
    work()
    assert job_failures(redis) == []


def _shopify(change: Any) -> bytes:
    return fixture_with("shopify", "orders_paid", change)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b.__setitem__("total_price_set", "x"), "total_price_set is not a JSON object"),
        (lambda b: b["total_price_set"].__setitem__("shop_money", ["x"]), "total_price_set.shop_money is not a JSON"),
        (lambda b: b["customer"].__setitem__("email_marketing_consent", 1), "customer.email_marketing_consent is not"),
        (lambda b: b["customer"].__setitem__("first_name", {"x": 1}), "valid Person: first_name"),
    ],
    ids=["total_price_set", "shop_money", "email_marketing_consent", "first_name"],
)
def test_a_shape_error_fails_the_job_once_with_the_field_named(app_client, redis, work, change, field):
    body = _shopify(change)
    response = post(app_client, "shopify", body)
    assert response.status_code == 202, response.data  # identify reads headers only: the worker decides
    work()
    failures = job_failures(redis)
    assert len(failures) == 1 and failures[0].startswith("connector.errors.PayloadError"), failures
    assert field in failures[0]
    job = fetch_job(redis, response.json["job"])
    assert job.retries_left == 0 and len(list(job.results())) == 1  # one attempt: no retry burned


def test_an_accident_in_translation_fails_the_job_once_as_a_payload_error(app_client, redis, work, monkeypatch):
    """The last-resort guard: an exception translation raises by accident is a PayloadError."""
    from connector.vendors.shopify import source as shopify

    def broken(*args: Any, **kwargs: Any) -> Any:
        return {}.get("x").get("y")  # AttributeError, as a translation bug would raise

    body = targets.fixture("shopify", "orders_paid")
    raw = mutate.dumps(body)
    response = post(app_client, "shopify", raw)
    assert response.status_code == 202
    monkeypatch.setattr(shopify.SOURCE, "to_activities", broken)  # inherited by the forked work horse
    work()
    failures = job_failures(redis)
    assert len(failures) == 1, failures
    assert failures[0].startswith("connector.errors.PayloadError: shopify payload: the payload has an unexpected shape")
    assert "(AttributeError: 'NoneType' object has no attribute 'get')" in failures[0], failures
    assert len(list(fetch_job(redis, response.json["job"]).results())) == 1


def test_short_fuzz_over_every_source_gives_no_5xx_and_no_unclassified_job_failure(app_client, redis, work):
    """A short ``make fuzz``: mutated, correctly signed requests plus unsigned garbage per source."""
    rng = random.Random(11)
    statuses: dict[int, int] = {}
    n = 0
    for source in targets.SOURCES:
        fixtures = [targets.fixture(source, name) for name in targets.WEBHOOK_FIXTURES[source]]
        for _ in range(12):
            n += 1
            base = rng.choice(fixtures)
            body = mutate.dumps(mutate.apply_all(base, mutate.random_mutations(rng, base, 2)))
            for response in (
                post(app_client, source, body, n=n),
                post(app_client, source, mutate.garbage(rng), sign=False, n=n),
            ):
                assert_clean(response)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    work()
    assert statuses.get(202, 0) > 0 and statuses.get(400, 0) > 0 and statuses.get(401, 0) > 0, statuses
    unclassified = [line for line in job_failures(redis) if not line.startswith("connector.errors.")]
    assert unclassified == []


def test_an_accident_in_a_vendor_folder_names_its_function_and_line():
    """The reason points at the vendor code where the payload's shape broke it (sources live in
    connector/vendors/<vendor>/ now; the shared parts in connector/sources/)."""
    from connector.sources.base import unexpected_shape

    namespace: dict[str, Any] = {}
    code = "def parse_login(body):\n    return body.get('guest').get('email')\n"
    exec(compile(code, "/srv/app/connector/vendors/acme/source.py", "exec"), namespace)  # noqa: S102 - a fixed snippet
    try:
        namespace["parse_login"]({})
    except AttributeError as exc:
        error = unexpected_shape(exc, "acme payload")
    assert "in parse_login (source.py:2)" in str(error), error
