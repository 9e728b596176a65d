"""The rules every destination keeps, checked for every registered platform and ESP.

The vendor list is the registries' (``PLATFORMS``, ``ESPS``): a vendor added there is tested here
without a line of this file changing, and fails when its client skips a rule. Each vendor's
sandbox module gives its tenant table (``tenant_table(sandbox_url)``) and the status it answers a
malformed request with (``BAD_REQUEST_STATUS``). Each rule runs one real job through burst RQ
workers against the real sandbox server:

* a 429 is waited out at least as long as the vendor's own signal says (``Retry-After``, a reset
  epoch, or — for vendors that send none — the client's documented default pause), then the
  activity or event is written once;
* a 500 is retried, then written once;
* the vendor's bad-request status, answered by an echoing server (the request, credentials
  included, in the body), fails the job at once with the vendor's answer in the reason and no
  configured secret in it or anywhere in Redis;
* a replay of a finished job sends nothing at all.

The last two tests build deliberately broken clients (one ignores ``Retry-After``, one retries a
4xx) and show that the rule checks catch them.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis import Redis

from connector import jobs
from connector.activities import Activity, LoyaltyEvent, Person
from connector.errors import FatalDestinationError, RetriableDestinationError
from connector.esps.registry import ESPS
from connector.http import parse_reset_epoch, parse_retry_after
from connector.parts import Part, Registration
from connector.platforms.registry import PLATFORMS
from connector.queue import DELIVERY_QUEUE, RELAY_QUEUE, fetch_job, get_queue
from connector.redaction import Redactor, configured_secrets
from connector.sandbox.server import SandboxServer
from connector.settings import Settings

TENANT = "rules"
EMAIL = "grace.hopper@example.com"
RETRY_AFTER = 2  # seconds the 429 fault asks for: the correct wait is ~3 s, a wait of 0-2 s shows
SCHEDULE = "0,0,0"  # no back-off of our own: any wait measured after a 429 is the signal's

VENDORS = [pytest.param("platform", name, id=name) for name in PLATFORMS] + [
    pytest.param("esp", name, id=name) for name in ESPS
]


def registration(role: str, name: str) -> Registration[Any]:
    registry: dict[str, Registration[Any]] = {**PLATFORMS} if role == "platform" else {**ESPS}
    return registry[name]


def toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)  # strings, numbers and booleans are spelled alike in JSON and TOML


def toml_table(header: str, table: dict[str, Any]) -> str:
    return f"[{header}]\n" + "".join(f"{key} = {toml_value(value)}\n" for key, value in table.items())


def tenant_toml(role: str, name: str, url: str) -> str:
    """The tenant on this vendor (an ESP tenant also needs a loyalty platform: the first registered)."""
    platform = name if role == "platform" else next(iter(PLATFORMS))
    text = textwrap.dedent(f"""
        [tenants.{TENANT}]
        timezone = "Europe/London"
    """) + toml_table(f"tenants.{TENANT}.loyalty", PLATFORMS[platform].sandbox.load().tenant_table(url))
    if role == "esp":
        text += toml_table(f"tenants.{TENANT}.esp", ESPS[name].sandbox.load().tenant_table(url))
    return text


def vendor_sandbox(sandbox: SandboxServer, name: str) -> Any:
    return {"glu": sandbox.sandboxes.glu, **sandbox.sandboxes.extra}[name]


def writes(state: dict[str, Any]) -> int:
    """Every write call the vendor took (the sandboxes count them as ``*_posts``)."""
    return sum(value for key, value in state.items() if key.endswith("_posts"))


def activity() -> Activity:
    return Activity(
        type="Connected to wifi",
        tenant=TENANT,
        source="purple",
        business_key="purple:venue-7:rules:2026-11-24",
        happened_at=datetime.fromisoformat("2026-11-24T19:12:03+00:00"),
        person=Person(email=EMAIL, first_name="Grace"),
        venue="venue-7",
    )


def event() -> LoyaltyEvent:
    return LoyaltyEvent.model_validate(
        {
            "type": "customer.loyalty.tier.upgraded",
            "event_id": "evcus_rules_1",
            "tenant": TENANT,
            "source": "voucherify",
            "occurred_at": (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=0),
            "email": EMAIL,
            "tier": "Gold",
            "previous_tier": "Silver",
            "points": 150,
            "balance": 1200,
        }
    )


@dataclasses.dataclass
class Run:
    """One vendor's tenant, sandbox and job queue for the rule checks."""

    role: str
    name: str
    settings: Settings
    vendor: Any  # the vendor's sandbox object
    redis: Redis
    work: Callable[..., None]

    @property
    def queue_name(self) -> str:
        return DELIVERY_QUEUE if self.role == "platform" else RELAY_QUEUE

    def enqueue(self) -> str:
        tenant = self.settings.tenants[TENANT]
        if self.role == "platform":
            (job_id,) = jobs.enqueue_deliveries(tenant, [activity()])
        else:
            self.vendor.expect_person(EMAIL)
            (job_id,) = jobs.enqueue_relays(tenant, [event()])
        return job_id

    def run_one(self, wait_for_retries: float = 20) -> Any:
        job_id = self.enqueue()
        self.work(wait_for_retries=wait_for_retries)
        return fetch_job(self.redis, job_id)

    def client_class(self) -> Any:
        return registration(self.role, self.name).client.load()


@pytest.fixture
def runs(
    env: Callable[..., Settings], sandbox: SandboxServer, redis: Redis, work: Callable[..., None]
) -> Callable[[str, str], Run]:
    def make(role: str, name: str) -> Run:
        settings = env(tenant_toml(role, name, sandbox.url), CONNECTOR_RETRY_SCHEDULE=SCHEDULE)
        return Run(role, name, settings, vendor_sandbox(sandbox, name), redis, work)

    return make


def status_of(job: Any) -> str:
    status = job.get_status()
    return str(getattr(status, "value", status))


def signalled_wait(run: Run, at: float, headers: dict[str, str]) -> float:
    """How long a 429 answered at ``at`` asked the caller to wait: ``Retry-After`` or a reset/retry
    epoch header (the longest, when there are several), else the client's documented default."""
    waits = []
    for header, value in headers.items():
        lowered = header.lower()
        if lowered == "retry-after":
            waits.append(parse_retry_after(value, now=at))
        elif "reset" in lowered or "retry" in lowered:
            waits.append(parse_reset_epoch(value, now=at))
    signalled = [w for w in waits if w is not None]
    if signalled:
        return max(signalled)
    default = getattr(run.client_class(), "default_429_pause", None)
    assert default is not None, f"{run.name}: a 429 without a signal, and no default pause in the client"
    return float(default)


# The rule checks (each raises AssertionError naming the vendor and the broken rule) ---------------


def check_429_waited_out(run: Run) -> None:
    faults = run.vendor.faults
    faults.arm({"mode": "status", "status": 429, "retry_after": RETRY_AFTER, "count": 1})
    job = run.run_one()
    assert status_of(job) == "finished", f"{run.name}: after a 429 the job ended {status_of(job)}"
    ((at, status, headers),) = faults.answered
    assert status == 429
    asked = signalled_wait(run, at, headers)
    later = [t for t in faults.times if t > at]
    assert later, f"{run.name}: never called again after the 429"
    waited = later[0] - at
    assert waited >= asked, f"{run.name}: called again {waited:.2f}s after a 429 that asked for {asked:.2f}s"
    assert writes(run.vendor.state()) == 1, f"{run.name}: not written exactly once after a 429"


def check_5xx_retried(run: Run) -> None:
    faults = run.vendor.faults
    faults.arm({"mode": "status", "status": 500, "count": 1})
    job = run.run_one()
    assert status_of(job) == "finished", f"{run.name}: after a 500 the job ended {status_of(job)}"
    ((at, status, _headers),) = faults.answered
    assert status == 500 and any(t > at for t in faults.times), f"{run.name}: the 500 was not retried"
    assert writes(run.vendor.state()) == 1, f"{run.name}: not written exactly once after a 500"


def redis_texts(redis: Redis) -> Iterator[str]:
    """Every value Redis holds, as text (job hashes, results streams, ledger, counters...)."""
    for key in redis.scan_iter():
        kind = redis.type(key).decode()
        values: list[Any] = []
        if kind == "string":
            values = [redis.get(key)]
        elif kind == "hash":
            values = list(redis.hgetall(key).values())
        elif kind == "list":
            values = redis.lrange(key, 0, -1)
        elif kind in ("set", "zset"):
            values = list(redis.smembers(key)) if kind == "set" else redis.zrange(key, 0, -1)
        elif kind == "stream":
            values = [v for _id, fields in redis.xrange(key) for v in fields.values()]
        for value in values:
            if isinstance(value, bytes):
                try:
                    value = zlib.decompress(value)
                except zlib.error:
                    pass
                yield value.decode("utf-8", "replace")
            else:
                yield str(value)


def check_4xx_fatal_with_answer_kept(run: Run) -> None:
    faults = run.vendor.faults
    status = int(registration(run.role, run.name).sandbox.load().BAD_REQUEST_STATUS)
    faults.arm({"mode": "echo", "status": status, "count": 1})
    job = run.run_one(wait_for_retries=5)
    assert status_of(job) == "failed", f"{run.name}: after a {status} the job ended {status_of(job)}"
    assert faults.calls == 1, f"{run.name}: called {faults.calls} times: a {status} was retried"
    result = job.latest_result()
    reason = str(result.exc_string if result is not None else "")
    assert str(status) in reason and "echo" in reason, f"{run.name}: the vendor's answer is not kept: {reason}"
    secrets = configured_secrets(run.settings)
    assert secrets, "the tenant has secrets to hide"
    redactor = Redactor(secrets, users=("connector", "sandbox-site"))
    assert redactor.redact(reason) == reason, f"{run.name}: a secret is in the failure reason: {reason}"
    for text in redis_texts(run.redis):
        assert redactor.redact(text) == text, f"{run.name}: a secret is in Redis: {text[:300]}"


def check_replay_sends_nothing(run: Run) -> None:
    job = run.run_one()
    assert status_of(job) == "finished", f"{run.name}: the job ended {status_of(job)}"
    calls, written = run.vendor.faults.calls, writes(run.vendor.state())
    assert written == 1
    get_queue(run.redis, run.queue_name).enqueue_job(job)
    run.work()
    replayed = fetch_job(run.redis, job.id)
    assert status_of(replayed) == "finished"
    assert replayed.return_value()["status"] == "already_delivered"
    assert (run.vendor.faults.calls, writes(run.vendor.state())) == (calls, written), (
        f"{run.name}: the replay reached the vendor"
    )


# Every vendor, every rule ---------------------------------------------------------------------


@pytest.mark.parametrize(("role", "name"), VENDORS)
def test_a_429_is_waited_out_then_written_once(role: str, name: str, runs: Callable[[str, str], Run]) -> None:
    check_429_waited_out(runs(role, name))


@pytest.mark.parametrize(("role", "name"), VENDORS)
def test_a_500_is_retried_then_written_once(role: str, name: str, runs: Callable[[str, str], Run]) -> None:
    check_5xx_retried(runs(role, name))


@pytest.mark.parametrize(("role", "name"), VENDORS)
def test_a_bad_request_fails_at_once_with_the_answer_and_no_secret(
    role: str, name: str, runs: Callable[[str, str], Run]
) -> None:
    check_4xx_fatal_with_answer_kept(runs(role, name))


@pytest.mark.parametrize(("role", "name"), VENDORS)
def test_a_replay_after_success_sends_nothing(role: str, name: str, runs: Callable[[str, str], Run]) -> None:
    check_replay_sends_nothing(runs(role, name))


# The checks catch broken clients -----------------------------------------------------------------

BROKEN: dict[str, type] = {}


class BrokenPart(Part):
    """A client part that loads a class defined here (the forked work horse inherits the registry)."""

    def load(self) -> Any:
        return BROKEN[self.target]


def register_broken(monkeypatch: pytest.MonkeyPatch, name: str, client: type) -> None:
    BROKEN[client.__name__] = client
    monkeypatch.setitem(PLATFORMS, name, dataclasses.replace(PLATFORMS[name], client=BrokenPart(client.__name__)))


def broken_platform() -> str:
    return next(iter(PLATFORMS))


def test_the_429_check_catches_a_client_that_ignores_retry_after(
    monkeypatch: pytest.MonkeyPatch, runs: Callable[[str, str], Run]
) -> None:
    name = broken_platform()
    base = PLATFORMS[name].client.load()

    class IgnoresRetryAfter(base):  # type: ignore[misc, valid-type]
        def retry_after_hint(self, response: Any) -> float | None:
            return None

    register_broken(monkeypatch, name, IgnoresRetryAfter)
    with pytest.raises(AssertionError, match=rf"{name}: called again .* after a 429 that asked for"):
        check_429_waited_out(runs("platform", name))


def test_the_4xx_check_catches_a_client_that_retries_a_bad_request(
    monkeypatch: pytest.MonkeyPatch, runs: Callable[[str, str], Run]
) -> None:
    name = broken_platform()
    base = PLATFORMS[name].client.load()

    class RetriesBadRequests(base):  # type: ignore[misc, valid-type]
        def request(self, method: str, path: str, **kwargs: Any) -> Any:
            try:
                return super().request(method, path, **kwargs)
            except FatalDestinationError as exc:
                raise RetriableDestinationError(str(exc), destination=name, status=exc.status) from None

    register_broken(monkeypatch, name, RetriesBadRequests)
    with pytest.raises(AssertionError, match=rf"{name}: after a \d+ the job ended finished"):
        check_4xx_fatal_with_answer_kept(runs("platform", name))
