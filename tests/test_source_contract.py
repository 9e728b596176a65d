"""The source contract (issue 12): what every registered inbound source must do, for free.

In the spirit of Zulip's ``WebhookTestCase``: each test is parametrised over the SOURCES registry
(test ids are the source names), so a new source that skips a rule fails here. Everything a test
needs per source comes from the source's sender sandbox (``connector/vendors/<name>/sandbox.py``,
see :mod:`connector.sandbox.sender`): its tenants-file table, its signing, its webhook fixtures.
The real app, a real Redis, real RQ workers and the sandbox server (PMS APIs, Glu, Klaviyo).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES
from pydantic import SecretStr, ValidationError
from rq.registry import FailedJobRegistry

from connector.errors import SignatureError
from connector.queue import INGEST_QUEUE, fetch_job, get_queue
from connector.redaction import configured_secrets
from connector.sandbox.sender import SourceSandbox, sandbox_tenant_toml, sender
from connector.sources.base import Envelope, InboundRequest, Source, SourceAdapter, SourceConfig
from connector.sources.registry import SOURCES
from connector.web import create_app

NAMES = sorted(SOURCES)
TENANT, OTHER = "alpha", "beta"
SECRET, OLD, LISTED, WRONG = "alpha-current", "alpha-rotated-out", "alpha-listed", "nobody"


def contract_problems(adapter: Source, fixtures: Path = FIXTURES) -> list[str]:
    """What a registered source lacks to take part in the contract (empty: nothing)."""
    problems = []
    try:
        module: SourceSandbox | None = sender(adapter.sandbox)
    except (ImportError, TypeError) as exc:
        problems.append(f"{adapter.name}: no sender sandbox ({exc})")
        module = None
    folder = fixtures / adapter.name
    if not folder.is_dir():
        problems.append(f"{adapter.name}: no fixtures directory {folder}")
    if module is not None:
        present = [name for name in module.WEBHOOK_FIXTURES if (folder / f"{name}.json").is_file()]
        if not present or len(present) != len(module.WEBHOOK_FIXTURES):
            problems.append(f"{adapter.name}: WEBHOOK_FIXTURES {list(module.WEBHOOK_FIXTURES)} not all in {folder}")
    if not adapter.config_model.credentials:
        problems.append(f"{adapter.name}: {adapter.config_model.__name__}.credentials is empty")
    # the Sources page shows every source's console steps (connector.sources.setup)
    if adapter.setup is None or not adapter.setup.steps or not adapter.setup.docs.startswith("https://"):
        problems.append(f"{adapter.name}: no setup steps (a SetupGuide as its adapter's setup)")
    model = adapter.config_model
    unknown = sorted(set(model.generated) - set(model.credentials))
    if unknown or (model.path_credential is not None and model.path_credential not in model.generated):
        problems.append(f"{adapter.name}: generated/path_credential must name generated credentials ({unknown})")
    return problems


def _sender(source: str) -> SourceSandbox:
    return sender(SOURCES[source].sandbox)


def _table(source: str, secret: str, url: str) -> dict[str, Any]:
    return _sender(source).source_table(secret, url)


def _credentials(source: str, secret: str, url: str = "") -> dict[str, Any]:
    """The credential keys of the table derived from ``secret``."""
    keys = SOURCES[source].config_model.credentials
    return {key: value for key, value in _table(source, secret, url).items() if key in keys}


def alpha_table(source: str, url: str) -> dict[str, Any]:
    """alpha's table: current credentials, the rotated-out ones in ``previous``, a second list secret."""
    table = _table(source, SECRET, url)
    if "secrets" in table:
        table["secrets"] = [*table["secrets"], *_table(source, LISTED, url)["secrets"]]
    return {**table, "previous": _credentials(source, OLD)}


def tenants_toml(url: str) -> str:
    return "".join(
        sandbox_tenant_toml(tenant, url, {s: table(s, url) for s in NAMES})
        for tenant, table in ((TENANT, alpha_table), (OTHER, lambda s, u: _table(s, OTHER, u)))
    )


@pytest.fixture
def app(env: Any, sandbox: Any) -> Any:
    settings = env(tenants_toml(sandbox.url))
    mews = sandbox.sandboxes.extra["mews"]
    for collection, items in _mews_fetched().items():
        mews.seed(collection, *items)
    return create_app(settings).test_client()


def _mews_fetched() -> dict[str, list[Any]]:
    def read(name: str) -> Any:
        return json.loads((FIXTURES / "mews" / f"{name}.json").read_text(), parse_float=str)

    return {
        "reservations": [read("reservation_started")],
        "customers": [read("customer")],
        "resource_categories": [read("resource_category")],
        "order_items": read("order_items"),
    }


def fixture(source: str, name: str) -> bytes:
    return (FIXTURES / source / f"{name}.json").read_bytes()


def first_webhook(source: str) -> bytes:
    module = _sender(source)
    active = [f for f in module.WEBHOOK_FIXTURES if f not in getattr(module, "IGNORED_FIXTURES", ())]
    return fixture(source, (active or list(module.WEBHOOK_FIXTURES))[0])


def post(client: Any, source: str, body: bytes, table: Mapping[str, Any], n: int, tenant: str = TENANT) -> Any:
    """``body`` signed by the sender sandbox for ``table``, posted to ``tenant``'s URL."""
    request = _sender(source).sign(body, table, n)
    return client.post(request.path(tenant, source), data=request.body, headers=request.headers)


def signing_table(source: str, url: str, secret: str = SECRET) -> dict[str, Any]:
    """alpha's table with the credentials derived from ``secret`` (what a sender holding them signs with)."""
    return {**_table(source, SECRET, url), **_credentials(source, secret)}


def queued(redis: Any) -> int:
    return int(get_queue(redis, INGEST_QUEUE).count)


def job_failures(redis: Any) -> list[str]:
    """The last line (exception and reason) of every failed ingest job."""
    lines = []
    for job_id in FailedJobRegistry(queue=get_queue(redis, INGEST_QUEUE)).get_job_ids():
        result = fetch_job(redis, job_id).latest_result()
        lines.append(((result.exc_string if result else "") or "").strip().splitlines()[-1])
    return lines


def assert_accepted(response: Any) -> None:
    """202 accepted, or a 200 that the source's rules give without a job (ignored, a ping)."""
    assert response.status_code in (200, 202), (response.status_code, response.data)
    if response.status_code == 200:
        assert response.json.get("status") in ("ignored", "ok") or response.json.get("reason"), response.data


def assert_authenticated(response: Any) -> None:
    """Past verification: accepted, or answered ``duplicate`` / ``ignored`` (the same body again)."""
    assert response.status_code in (200, 202), (response.status_code, response.data)
    assert response.json.get("status") in ("accepted", "duplicate", "ignored", "ok"), response.data


# ---------------------------------------------------------------- registration


@pytest.mark.parametrize("source", NAMES)
def test_every_registered_source_has_fixtures_and_a_sender_sandbox(source):
    assert contract_problems(SOURCES[source]) == []


def test_the_registration_check_reports_a_source_without_fixtures_or_sandbox(tmp_path):
    class NoFixtures(SourceAdapter):
        name = "nofixtures"
        config_model = SourceConfig
        content_types = ("application/json",)

        def verify(self, request: InboundRequest, config: Any) -> None:
            raise SignatureError("never")

        def identify(self, request: InboundRequest, config: Any, tenant: str) -> Envelope:
            raise NotImplementedError

        def to_activities(self, envelope: Envelope, payload: Any, context: Any, config: Any) -> list[Any]:
            return []

    problems = contract_problems(NoFixtures())
    assert any(p.startswith("nofixtures: no sender sandbox") and "connector.vendors.nofixtures" in p for p in problems)
    assert any("nofixtures: no fixtures directory" in p for p in problems)
    assert any("SourceConfig.credentials is empty" in p for p in problems)
    assert "nofixtures: no setup steps (a SetupGuide as its adapter's setup)" in problems

    class Misnamed(SourceConfig):  # generates a key it does not authenticate with
        credentials = ("token",)
        generated = ("nonce",)
        path_credential = "token"

    class MisnamedSource(NoFixtures):
        config_model = Misnamed

    assert "nofixtures: generated/path_credential must name generated credentials (['nonce'])" in (
        contract_problems(MisnamedSource())
    )
    # a real source whose fixtures folder is missing is reported too
    assert contract_problems(SOURCES["mews"], tmp_path) == [
        f"mews: no fixtures directory {tmp_path / 'mews'}",
        f"mews: WEBHOOK_FIXTURES ['general_webhook'] not all in {tmp_path / 'mews'}",
    ]


# ---------------------------------------------------------------- authenticity


@pytest.mark.parametrize("source", NAMES)
def test_unsigned_wrong_secret_and_another_tenants_secret_are_401_and_no_job(app, redis, sandbox, source):
    body = first_webhook(source)
    content_type = _sender(source).sign(body, signing_table(source, sandbox.url), 1).headers["Content-Type"]
    unsigned = app.post(f"/webhooks/{TENANT}/{source}", data=body, headers={"Content-Type": content_type})
    wrong = post(app, source, body, signing_table(source, sandbox.url, WRONG), 2)
    other = post(app, source, body, _table(source, OTHER, sandbox.url), 3)
    for response in (unsigned, wrong, other):
        assert response.status_code == 401, (response.status_code, response.data)
        assert response.json["error"]["code"] == "invalid_signature"
    assert queued(redis) == 0
    # the other tenant's own URL takes its own credentials (the 401 above is about the tenant, not the request)
    assert_accepted(post(app, source, body, _table(source, OTHER, sandbox.url), 4, tenant=OTHER))


@pytest.mark.parametrize("source", NAMES)
def test_rotated_out_credentials_in_previous_are_accepted(app, sandbox, source):
    body = first_webhook(source)
    assert_accepted(post(app, source, body, signing_table(source, sandbox.url), 1))
    assert_authenticated(post(app, source, body, signing_table(source, sandbox.url, OLD), 2))
    if "secrets" in SOURCES[source].config_model.model_fields:  # a list source: every listed secret
        assert_authenticated(post(app, source, body, signing_table(source, sandbox.url, LISTED), 3))
    # and neither is the current one: a tenant without previous refuses the rotated-out credentials
    assert (
        post(
            app, source, body, {**_table(source, OTHER, sandbox.url), **_credentials(source, OLD)}, 4, tenant=OTHER
        ).status_code
        == 401
    )


@pytest.mark.parametrize("source", NAMES)
def test_previous_holds_credentials_only_and_its_secrets_are_redacted(env, sandbox, source):
    model = SOURCES[source].config_model
    table = alpha_table(source, sandbox.url)
    with pytest.raises(ValidationError, match="cannot be rotated"):
        model.model_validate({**table, "previous": {**table["previous"], "api_url": "http://x"}})
    settings = env(tenants_toml(sandbox.url))
    previous = settings.tenants[TENANT].sources[source].previous
    assert previous is not None
    old_secrets = []
    for key in model.credentials:
        value = getattr(previous, key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, SecretStr):
                old_secrets.append(item.get_secret_value())
    assert old_secrets and set(old_secrets) <= set(configured_secrets(settings))
    assert all(secret not in repr(settings.tenants[TENANT]) for secret in old_secrets)


# ---------------------------------------------------------------- fixtures and repeats


@pytest.mark.parametrize("source", NAMES)
def test_every_webhook_fixture_signed_on_the_fly_is_accepted(app, sandbox, source):
    module = _sender(source)
    for n, name in enumerate(module.WEBHOOK_FIXTURES):
        response = post(app, source, fixture(source, name), signing_table(source, sandbox.url), 100 + n)
        assert_accepted(response)
        if name not in getattr(module, "IGNORED_FIXTURES", ()):
            assert response.status_code == 202, (name, response.data)


@pytest.mark.parametrize("source", NAMES)
def test_a_repeated_delivery_is_a_duplicate_or_makes_no_second_activity(app, redis, sandbox, work, source):
    body, table = first_webhook(source), signing_table(source, sandbox.url)
    first = post(app, source, body, table, 7)
    assert first.status_code == 202, first.data
    if SOURCES[source].repeats_are_duplicates:
        again = post(app, source, body, table, 7)
        assert again.status_code == 200 and again.json["status"] == "duplicate", again.data
        assert again.json["job"] == first.json["job"]
        return
    work()
    made = len(sandbox.sandboxes.glu.state()["activities"])
    assert made > 0
    assert post(app, source, body, table, 7).status_code == 202  # no delivery id: not a duplicate
    work()
    assert len(sandbox.sandboxes.glu.state()["activities"]) == made
    assert job_failures(redis) == []


# ---------------------------------------------------------------- garbage with a valid signature


def _retyped(value: Any) -> Any:
    """Every leaf of another JSON type (strings → numbers, numbers → strings, objects → arrays...)."""
    if isinstance(value, dict):
        return {key: _retyped(item) for key, item in value.items()}
    if isinstance(value, list):
        return {"0": [_retyped(item) for item in value]}
    if isinstance(value, bool) or value is None:
        return "x"
    if isinstance(value, str):
        return 12345
    return str(value)


def _huge(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _huge(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_huge(item) for item in value]
    return "x" * 20_000 if isinstance(value, str) else value


def _deep(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"a": [value]}
    return value


def garbage(source: str) -> list[bytes]:
    """Bodies no sender sends, each to be signed validly."""
    base = json.loads(first_webhook(source))
    top = base if isinstance(base, dict) else {"value": base}
    return [
        b"[]",
        b'"a string"',
        b"12345",
        b"null",
        b"{}",
        json.dumps(_retyped(top)).encode(),
        json.dumps({key: None for key in top}).encode(),
        json.dumps({key: [] for key in top}).encode(),
        json.dumps(_huge(top)).encode(),
        json.dumps({**top, "deep": _deep(30)}).encode(),  # within the depth limit
        json.dumps(_deep(40)).encode(),  # 80 levels: over the limit
    ]


@pytest.mark.parametrize("source", NAMES)
def test_garbage_with_a_valid_signature_is_never_5xx_and_never_an_unclassified_job_failure(
    app, redis, sandbox, work, source
):
    table = signing_table(source, sandbox.url)
    statuses = []
    for n, body in enumerate(garbage(source)):
        response = post(app, source, body, table, 500 + n)
        assert response.status_code < 500, (body[:80], response.data)
        assert response.is_json or response.status_code == 200, response.data
        statuses.append(response.status_code)
    assert 400 in statuses or 401 in statuses, statuses  # at least the over-deep body is refused
    work()
    unclassified = [line for line in job_failures(redis) if not line.startswith("connector.errors.")]
    assert unclassified == []
