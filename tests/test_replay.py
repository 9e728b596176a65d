"""``connector failures`` and ``connector replay`` against a real Redis, real workers and the Glu
sandbox; and a stale cached contact id (deleted or merged at Glu) resolved again by ``deliver``."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from redis import Redis
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry
from rq.results import Result
from rq.serializers import JSONSerializer

from connector import jobs
from connector.activities import Activity, Person
from connector.cli import main
from connector.ledger import ledger_key, ledger_record
from connector.metrics import read_counters
from connector.queue import DELIVERY_QUEUE, FAILURE_TTL, INGEST_QUEUE, get_queue
from connector.replay import group_key, parse_since, status_in
from connector.sandbox.server import SandboxServer
from connector.vendors.glu.platform import unknown_contact
from connector.vendors.voucherify import sandbox as voucherify_sandbox

NOW = datetime(2026, 11, 24, 19, 12, 3, tzinfo=UTC)


def activity(n: int, *, tenant: str = "harbour", source: str = "shopify", email: str | None = None) -> Activity:
    return Activity(
        type="Purchase",
        tenant=tenant,
        source=source,
        business_key=f"{source}:{tenant}:order:{n}",
        happened_at=NOW,
        person=Person(email=email or f"guest{n % 20}@example.com", first_name="Grace"),
        spend=1000 + n,
        currency_code="GBP",
    )


def enqueue(activities: list[Activity]) -> list[str]:
    """Delivery jobs as the ingest job enqueues them."""
    by_tenant: dict[str, list[Activity]] = {}
    for item in activities:
        by_tenant.setdefault(item.tenant, []).append(item)
    ids: list[str] = []
    for name, items in by_tenant.items():
        tenant = jobs.tenants().get(name)
        assert tenant is not None
        ids += jobs.enqueue_deliveries(tenant, items)
    return ids


def arm(sandbox: SandboxServer, **fault: Any) -> None:
    assert requests.post(f"{sandbox.url}/glu/_sandbox/faults", json=fault, timeout=5).status_code == 201


def clear(sandbox: SandboxServer) -> None:
    assert requests.delete(f"{sandbox.url}/glu/_sandbox/faults", timeout=5).ok


def failed_ids(redis: Redis, queue: str = DELIVERY_QUEUE) -> set[str]:
    return set(FailedJobRegistry(queue, connection=redis, serializer=JSONSerializer).get_job_ids(cleanup=False))


def snapshot(redis: Redis) -> dict[bytes, Any]:
    """Every key with its serialized value and whether it expires (what a dry run must not touch)."""
    return {key: (redis.dump(key), redis.ttl(key) > 0) for key in sorted(redis.keys("*"))}


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    main(list(argv))
    captured = capsys.readouterr()
    return captured.out, captured.err


# --- pure parts ------------------------------------------------------------------------------


def test_group_key_normalises_ids_and_keeps_statuses() -> None:
    a = group_key("glu answered 401 to GET /glu/contacts/123: {}")
    assert a == group_key("glu answered 401 to GET /glu/contacts/456: {}")
    assert a != group_key("glu answered 500 to GET /glu/contacts/456: {}")
    assert group_key("job deliver-" + "a1" * 20 + " failed") == group_key("job deliver-" + "b2" * 20 + " failed")
    assert "{id}" in group_key("order 1a2b3c4d-0000-4000-8000-123456789abc gone")


def test_status_in_reads_the_failing_http_status() -> None:
    assert status_in("glu answered 422 to POST /activities: {}") == 422
    assert status_in("loyaltylion: the API key was rejected (401); check tenants.x") == 401
    assert status_in("voucherify: the project's plan limit is exceeded (402 Payment Required)") == 402
    assert status_in("glu: timed out after 10.0s on POST /activities") is None


def test_parse_since_takes_durations_and_iso_times() -> None:
    assert parse_since("2h", NOW) == NOW - timedelta(hours=2)
    assert parse_since("3d", NOW) == NOW - timedelta(days=3)
    assert parse_since("30m", NOW) == NOW - timedelta(minutes=30)
    assert parse_since("2026-11-20", NOW) == datetime(2026, 11, 20, tzinfo=UTC)
    assert parse_since("2026-11-20T10:00:00+01:00", NOW) == datetime(2026, 11, 20, 9, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_since("yesterday", NOW)


def test_unknown_contact_reads_glu_s_answers() -> None:
    violation = {"violations": [{"propertyPath": "contact", "message": "This value should be a valid contact."}]}
    assert unknown_contact(422, json.dumps(violation))
    assert unknown_contact(422, json.dumps(violation)[:60] + '"propertyPath": "contact"')  # truncated body
    assert not unknown_contact(422, json.dumps({"violations": [{"propertyPath": "type", "message": "x"}]}))
    assert unknown_contact(400, '{"detail": "Item not found for \\"/contacts/1042\\"."}')
    assert not unknown_contact(400, '{"detail": "Syntax error"}')
    assert not unknown_contact(403, json.dumps(violation))


# --- connector failures ---------------------------------------------------------------------


def make_failures(env: Callable[..., Any], sandbox: SandboxServer, work: Callable[..., None], redis: Redis) -> None:
    """harbour/shopify: 3 deliveries failing 403; marina/mews: 2 failing 422; one ingest job
    failing on its body (a payload error)."""
    env()
    arm(sandbox, mode="status", status=403, path="/activities", count=3)
    enqueue([activity(n) for n in range(3)])
    work()
    clear(sandbox)
    arm(sandbox, mode="status", status=422, path="/activities", count=2)
    enqueue([activity(n, tenant="marina", source="mews") for n in range(10, 12)])
    work()
    clear(sandbox)
    envelope = {
        "source": "shopify",
        "tenant": "harbour",
        "event_type": "orders/paid",
        "delivery_id": "d-1",
        "received_at": NOW.isoformat(),
    }
    get_queue(redis, INGEST_QUEUE).enqueue(
        "connector.jobs.ingest", args=(envelope, "{not json"), job_id="ingest-broken", failure_ttl=FAILURE_TTL
    )
    work()
    assert len(failed_ids(redis)) == 5 and failed_ids(redis, INGEST_QUEUE) == {"ingest-broken"}


def test_failures_groups_by_reason_with_counts(env, sandbox, work, redis, capsys) -> None:
    make_failures(env, sandbox, work, redis)
    out, _ = cli(capsys, "failures")
    assert out.startswith("6 failed jobs in 3 groups")
    lines = out.splitlines()
    heads = [line for line in lines if " x " in line and line.split(" x ")[0].isdigit()]
    assert [h.split(" x ")[0] for h in heads] == ["3", "2", "1"]
    assert "glu answered 403 to POST /glu/activities" in heads[0]
    assert "glu answered 422 to POST /glu/activities" in heads[1]
    assert "@example.com" not in out  # guests' emails never shown
    assert sum(1 for line in lines if line.startswith("    deliver-")) == 5


def test_failures_json_parses(env, sandbox, work, redis, capsys) -> None:
    make_failures(env, sandbox, work, redis)
    out, _ = cli(capsys, "failures", "--json")
    answer = json.loads(out)
    assert answer["total"] == 6
    assert [g["count"] for g in answer["groups"]] == [3, 2, 1]
    first = answer["groups"][0]["jobs"][0]
    assert first["tenant"] == "harbour" and first["source"] == "shopify" and first["status"] == 403
    assert first["queue"] == "delivery" and first["kind"] == "delivery" and first["failed_at"]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--tenant", "marina"], 2),
        (["--source", "mews"], 2),
        (["--queue", "ingest"], 1),
        (["--status", "403"], 3),
        (["--reason", "NOT VALID JSON"], 1),  # case-insensitive
        (["--since", "1h"], 6),
    ],
)
def test_each_filter_narrows(env, sandbox, work, redis, capsys, flags: list[str], expected: int) -> None:
    make_failures(env, sandbox, work, redis)
    out, _ = cli(capsys, "failures", "--json", *flags)
    assert json.loads(out)["total"] == expected


def test_since_excludes_older_failures(env, sandbox, work, redis, capsys) -> None:
    make_failures(env, sandbox, work, redis)
    old = next(iter(failed_ids(redis)))
    redis.hset(Job.key_for(old), "ended_at", (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    out, _ = cli(capsys, "failures", "--json", "--since", "2d")
    ids = [job["job"] for g in json.loads(out)["groups"] for job in g["jobs"]]
    assert len(ids) == 5 and old not in ids
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    out, _ = cli(capsys, "failures", "--since", future)
    assert out.strip() == "no failed jobs match"


def test_failures_says_so_when_nothing_matches(env, capsys) -> None:
    env()
    out, _ = cli(capsys, "failures", "--tenant", "harbour")
    assert out.strip() == "no failed jobs match"
    out, _ = cli(capsys, "replay", "--yes")
    assert out.strip() == "no failed jobs match"


def test_a_bad_since_is_refused(env) -> None:
    env()
    with pytest.raises(SystemExit, match="--since 'soon'"):
        main(["failures", "--since", "soon"])


# --- connector replay -----------------------------------------------------------------------


def test_replay_of_200_failed_jobs_shows_progress_and_doubles_nothing(env, sandbox, work, redis, capsys) -> None:
    env()
    activities = [activity(n) for n in range(200)]
    arm(sandbox, mode="status", status=403, path="/activities", count=200)
    ids = enqueue(activities)
    work()
    clear(sandbox)
    assert failed_ids(redis) == set(ids)
    assert sandbox.sandboxes.glu.state()["activities"] == []
    # Three of them reached Glu another way meanwhile (e.g. a backfill): the ledger holds them.
    for item in activities[:3]:
        ledger_record(redis, ledger_key("harbour", "glu", item), "glu", {"platform": "glu", "remote_id": "x"})

    before = snapshot(redis)
    out, _ = cli(capsys, "replay", "--dry-run")
    assert snapshot(redis) == before  # nothing changed
    would = [line.split()[2] for line in out.splitlines() if line.startswith("would requeue")]
    assert sorted(would) == sorted(ids)
    assert "200 failed jobs would be requeued (dry run: nothing changed)" in out

    with pytest.raises(SystemExit, match="200 jobs match; pass --yes"):
        main(["replay"])  # more than a few, and no terminal to ask on
    assert snapshot(redis) == before

    started = time.monotonic()
    out, err = cli(capsys, "replay", "--yes")
    assert "replay: [" in err and "200/200" in err  # progress, on stderr
    assert "requeued 197, already delivered 3" in out
    assert not failed_ids(redis)
    for job_id in ids[:3]:
        assert Job.fetch(job_id, connection=redis, serializer=JSONSerializer).get_status() == JobStatus.FINISHED
    work()
    assert time.monotonic() - started < 120
    state = sandbox.sandboxes.glu.state()
    references = Counter(a["externalReference"] for a in state["activities"])
    assert len(references) == 197 and set(references.values()) == {1}  # each exactly once
    assert state["activity_posts"] == 197  # one post each (the faults answered before the route): none twice
    assert {item.business_key for item in activities[:3]}.isdisjoint(references)
    out, _ = cli(capsys, "replay", "--yes")
    assert out.strip() == "no failed jobs match"


def test_replay_filters_and_waits_for_the_outcome(env, sandbox, work, redis, capsys) -> None:
    make_failures(env, sandbox, work, redis)
    out, _ = cli(capsys, "replay", "--dry-run", "--tenant", "marina")
    assert sum(1 for line in out.splitlines() if line.startswith("would requeue")) == 2
    # The ingest job fails again (its body is still broken); --wait counts it. A worker process
    # starts once the replay has requeued it.
    command = [sys.executable, "-m", "connector.cli", "worker", "--burst"]
    worker = threading.Thread(target=lambda: (time.sleep(1), subprocess.run(command, timeout=60, check=True)))
    worker.start()
    out, _ = cli(capsys, "replay", "--queue", "ingest", "--wait", "30")
    worker.join()
    assert "requeued 1, already delivered 0, still failing 1" in out
    assert "still failing: ingest-broken" in out
    assert failed_ids(redis, INGEST_QUEUE) == {"ingest-broken"}
    assert len(failed_ids(redis)) == 5  # the deliveries were not touched


# --- stale contact ids ----------------------------------------------------------------------


def posted(sandbox: SandboxServer, item: Activity) -> list[dict[str, Any]]:
    """The Glu sandbox's activities of ``item`` (by its external reference)."""
    return [a for a in sandbox.sandboxes.glu.state()["activities"] if a["externalReference"] == item.business_key]


def cached_contact(redis: Redis, email: str) -> str | None:
    jobs.forget_local_contacts("harbour")  # what Redis holds (the workers wrote it), not this process's memory
    return jobs.RedisContactCache(redis, "harbour", "glu").get(email)


def test_a_contact_deleted_at_glu_is_resolved_again(env, sandbox, work, redis) -> None:
    env()
    enqueue([activity(1, email="ada@example.com")])
    work()
    first = cached_contact(redis, "ada@example.com")
    assert first is not None
    assert requests.delete(f"{sandbox.url}/glu/_sandbox/contacts/{first}", timeout=5).ok
    enqueue([activity(2, email="ada@example.com")])
    work()
    assert not failed_ids(redis)
    state = sandbox.sandboxes.glu.state()
    second = cached_contact(redis, "ada@example.com")
    assert second is not None and second != first
    ours = [a for a in state["activities"] if a["externalReference"] == activity(2).business_key]
    assert len(ours) == 1 and ours[0]["contact"] == f"/contacts/{second}"
    assert state["activity_posts"] == 3  # the first, the stale one (422), the one on the new contact
    assert read_counters(redis).get("stale_contacts|destination=glu") == 1


def test_a_contact_merged_at_glu_lands_on_the_survivor(env, sandbox, work, redis) -> None:
    env()
    enqueue([activity(1, email="ada@example.com"), activity(2, email="ada.l@example.com")])
    work()
    merged, survivor = cached_contact(redis, "ada@example.com"), cached_contact(redis, "ada.l@example.com")
    answer = requests.post(
        f"{sandbox.url}/glu/_sandbox/contacts/{merged}/merge", json={"into": int(str(survivor))}, timeout=5
    )
    assert answer.ok
    enqueue([activity(3, email="ada@example.com")])
    work()
    assert not failed_ids(redis)
    ours = [
        a for a in sandbox.sandboxes.glu.state()["activities"] if a["externalReference"] == activity(3).business_key
    ]
    assert len(ours) == 1 and ours[0]["contact"] == f"/contacts/{survivor}"
    assert cached_contact(redis, "ada@example.com") == survivor


def test_a_job_that_failed_on_a_stale_contact_before_the_fix_replays(env, sandbox, work, redis, capsys) -> None:
    env()
    enqueue([activity(1, email="ada@example.com")])
    work()
    stale = cached_contact(redis, "ada@example.com")
    assert requests.delete(f"{sandbox.url}/glu/_sandbox/contacts/{stale}", timeout=5).ok
    # What a worker without the fix left: the delivery failed at once on Glu's 422.
    [job_id] = enqueue([activity(2, email="ada@example.com")])
    job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    get_queue(redis, DELIVERY_QUEUE).remove(job)
    reason = (
        "Traceback (most recent call last):\n  ...\nconnector.errors.FatalDestinationError: glu answered 422 to "
        'POST /activities: {"@type":"ConstraintViolationList","title":"An error occurred","detail":"contact: '
        'This value should be a valid contact.","violations":[{"propertyPath":"contact"}]}'
    )
    job.retries_left = 0
    FailedJobRegistry(DELIVERY_QUEUE, connection=redis, serializer=JSONSerializer).add(job, FAILURE_TTL, reason)
    Result.create_failure(job, FAILURE_TTL, reason)
    job.set_status(JobStatus.FAILED)

    out, _ = cli(capsys, "failures", "--status", "422", "--reason", "valid contact")
    assert out.startswith("1 failed job in 1 group") and job_id in out
    out, _ = cli(capsys, "replay", "--status", "422")
    assert "requeued 1, already delivered 0" in out
    work()
    assert not failed_ids(redis)
    fresh = cached_contact(redis, "ada@example.com")
    ours = [
        a for a in sandbox.sandboxes.glu.state()["activities"] if a["externalReference"] == activity(2).business_key
    ]
    assert len(ours) == 1 and ours[0]["contact"] == f"/contacts/{fresh}" and fresh != stale


def test_a_customer_deleted_at_voucherify_is_upserted_again(env, sandbox, work, redis) -> None:
    """Voucherify's events name the customer by source_id; the cached id serves the lookup after
    an attempt of unknown outcome, which a deleted customer answers 404: resolved again, once."""
    vouch = sandbox.sandboxes.extra["voucherify"]
    table = voucherify_sandbox.tenant_table(sandbox.url)
    env(
        '[tenants.harbour]\ntimezone = "Europe/London"\n[tenants.harbour.loyalty]\n'
        + "".join(f'{key} = "{value}"\n' for key, value in table.items())
    )
    enqueue([activity(1, email="ada@example.com")])
    work()
    stale = jobs.RedisContactCache(redis, "harbour", "voucherify").get("ada@example.com")
    assert stale is not None
    assert requests.delete(f"{sandbox.url}/voucherify/_sandbox/customers/{stale}", timeout=5).ok
    vouch.faults.arm({"mode": "status", "status": 500, "path": "/v1/events", "count": 1})  # outcome unknown
    enqueue([activity(2, email="ada@example.com")])
    work(wait_for_retries=10)
    assert not failed_ids(redis)
    jobs.forget_local_contacts("harbour")  # what Redis holds (the workers wrote it), not this process's memory
    fresh = jobs.RedisContactCache(redis, "harbour", "voucherify").get("ada@example.com")
    assert fresh is not None and fresh != stale
    events = [e for e in vouch.state()["events"] if e["metadata"]["connector_key"] == activity(2).business_key]
    assert len(events) == 1 and events[0]["customer_id"] == fresh
    assert read_counters(redis).get("stale_contacts|destination=voucherify") == 1
