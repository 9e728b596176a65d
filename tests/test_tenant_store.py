"""The tenant store: tenants kept in Redis beside the tenants file, sealed at rest, served by every
process within a second of a change, and never losing queued work when a setting goes away."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from conftest import GLU_KEY, load_fixture, shopify_headers
from stack_helpers import redis_texts

from connector import cli, jobs
from connector.directory import TenantDirectory
from connector.merchant_links import read_link_token
from connector.platforms.base import UnconfiguredPlatform
from connector.queue import DELIVERY_QUEUE, INGEST_QUEUE, get_queue
from connector.secretbox import WrongSecretKeyError
from connector.settings import Settings
from connector.tenant_store import TenantStore
from connector.web import create_app

SECRET_KEY = "the-operators-stable-secret-key-0123"
STORED_GLU_KEY = "glu-key-typed-into-the-pages-7f3a9c"
STORED_SHOPIFY_SECRET = "shpss_typed_into_the_pages_5d1e2b"
SHOP = "lagoon-shop.myshopify.com"


@pytest.fixture
def store_settings(env: Any) -> Settings:
    settings: Settings = env(CONNECTOR_SECRET_KEY=SECRET_KEY)
    return settings


def lagoon(sandbox_url: str, **extra: Any) -> dict[str, Any]:
    """A stored tenant's document: Glu on the sandbox and a Shopify source."""
    return {
        "timezone": "Europe/Lisbon",
        "loyalty": {"platform": "glu", "base_url": f"{sandbox_url}/glu", "api_key": GLU_KEY},
        "sources": {"shopify": {"shop_domain": SHOP, "secrets": [STORED_SHOPIFY_SECRET]}},
        **extra,
    }


def post_order(client: Any, tenant: str = "lagoon") -> Any:
    body = load_fixture("shopify", "orders_paid")
    headers = shopify_headers(body, secret=STORED_SHOPIFY_SECRET, shop=SHOP)
    return client.post(f"/webhooks/{tenant}/shopify", data=body, headers=headers)


def test_a_stored_tenant_is_served_by_every_process_within_a_second(store_settings, redis, sandbox):
    web = TenantDirectory(store_settings, redis, recheck=0.05)
    worker = TenantDirectory(store_settings, redis, recheck=0.05)
    assert web.get("lagoon") is None and worker.get("lagoon") is None
    store = TenantStore.open(redis, SECRET_KEY)
    store.create("lagoon", lagoon(sandbox.url))
    served = TenantDirectory(store_settings, redis).get("lagoon")
    assert served is not None and served.loyalty.platform == "glu" and served.timezone == "Europe/Lisbon"
    import time

    time.sleep(0.06)
    assert worker.get("lagoon") is not None  # no restart: the version key changed
    store.update("lagoon", lambda doc: {**doc, "timezone": "Asia/Tokyo"})
    time.sleep(0.06)
    tenant = web.get("lagoon")
    assert tenant is not None and tenant.timezone == "Asia/Tokyo"
    store.delete("lagoon")
    time.sleep(0.06)
    assert worker.get("lagoon") is None


def test_the_intake_reads_the_version_key_at_most_once_a_second(store_settings, redis, sandbox):
    TenantStore.open(redis, SECRET_KEY).create("lagoon", lagoon(sandbox.url))
    directory = TenantDirectory(store_settings, redis)
    directory.get("lagoon")
    before = redis.info("commandstats").get("cmdstat_get", {}).get("calls", 0)
    for _ in range(500):
        assert directory.get("lagoon") is not None
    after = redis.info("commandstats").get("cmdstat_get", {}).get("calls", 0)
    assert after - before <= 2  # not one read per webhook


def test_a_stored_tenant_is_sealed_whole_in_redis(store_settings, redis, sandbox):
    store = TenantStore.open(redis, SECRET_KEY)
    store.create("lagoon", {"timezone": "UTC"})
    doc = lagoon(sandbox.url)
    doc["loyalty"]["api_key"] = STORED_GLU_KEY
    store.update("lagoon", lambda _: doc, secrets_set=["loyalty.api_key"])
    hint = store.get("lagoon").secret_hint("loyalty.api_key")  # type: ignore[union-attr]
    assert hint is not None and hint["last4"] == STORED_GLU_KEY[-4:] and hint["set_at"]
    texts = [text for _, text in redis_texts(redis)]
    for secret in (STORED_GLU_KEY, STORED_SHOPIFY_SECRET, STORED_GLU_KEY[-8:], "Europe/Lisbon"):
        assert not any(secret in text for text in texts), secret


def test_another_secret_key_cannot_open_the_store(store_settings, redis):
    TenantStore.open(redis, SECRET_KEY).create("lagoon", {"timezone": "UTC"})
    with pytest.raises(WrongSecretKeyError, match="CONNECTOR_SECRET_KEY is not the key"):
        TenantStore.open(redis, "another-key-of-another-operator")


def test_opening_an_empty_store_writes_nothing(store_settings, redis):
    TenantStore.open(redis, SECRET_KEY)
    TenantDirectory(store_settings, redis).all()
    assert redis.keys("*") == []


def test_a_stored_tenant_cannot_shadow_a_tenants_file_tenant(store_settings, redis, sandbox):
    store = TenantStore.open(redis, SECRET_KEY)
    store.create("harbour", {"timezone": "Asia/Tokyo", "loyalty": {"platform": "glu", "base_url": "http://x.test"}})
    tenant = TenantDirectory(store_settings, redis).get("harbour")
    assert tenant is not None and tenant.timezone == "Europe/London"  # the file's


def test_env_references_in_a_stored_tenant_are_never_read(store_settings, redis, sandbox, monkeypatch):
    monkeypatch.setenv("OPERATOR_SECRET", "the-operators-own-secret-value")
    doc = lagoon(sandbox.url)
    doc["loyalty"]["api_key"] = "env:OPERATOR_SECRET"
    TenantStore.open(redis, SECRET_KEY).create("lagoon", doc)
    tenant = TenantDirectory(store_settings, redis).get("lagoon")
    assert tenant is not None
    assert tenant.loyalty.api_key.get_secret_value() == "env:OPERATOR_SECRET"  # type: ignore[attr-defined]


def test_an_invalid_stored_tenant_is_not_served_and_says_why(store_settings, redis, sandbox, caplog):
    doc = lagoon(sandbox.url)
    doc["loyalty"]["base_url"] = "not a url"
    TenantStore.open(redis, SECRET_KEY).create("lagoon", doc)
    directory = TenantDirectory(store_settings, redis)
    assert directory.get("lagoon") is None
    assert any("tenants.lagoon.loyalty.base_url" in p for p in directory.problems("lagoon"))


def test_a_stored_tenant_without_a_platform_answers_ignored(store_settings, redis, sandbox):
    doc = lagoon(sandbox.url)
    del doc["loyalty"]
    TenantStore.open(redis, SECRET_KEY).create("lagoon", doc)
    client = create_app(store_settings).test_client()
    answer = post_order(client)
    assert answer.status_code == 200 and answer.json["status"] == "ignored"
    assert "not chosen its loyalty platform" in answer.json["reason"]
    tenant = TenantDirectory(store_settings, redis).get("lagoon")
    assert tenant is not None and isinstance(tenant.loyalty, UnconfiguredPlatform)


def test_concurrent_writes_never_lose_each_other(store_settings, redis):
    store = TenantStore.open(redis, SECRET_KEY)
    store.create("lagoon", {"timezone": "UTC", "sources": {}})

    def add(slug: str) -> None:
        for n in range(10):
            store.update("lagoon", lambda doc, n=n: {**doc, slug: n})

    threads = [threading.Thread(target=add, args=(slug,)) for slug in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    document = store.get("lagoon").document  # type: ignore[union-attr]
    assert (document["a"], document["b"], document["c"]) == (9, 9, 9)


def test_a_secret_typed_into_the_pages_is_redacted_in_logs(store_settings, redis, sandbox, caplog):
    doc = lagoon(sandbox.url)
    doc["loyalty"]["api_key"] = STORED_GLU_KEY
    TenantStore.open(redis, SECRET_KEY).create("lagoon", doc)
    TenantDirectory(store_settings, redis).all()  # a rebuild hands the secrets to the redactor
    with caplog.at_level(logging.WARNING):
        logging.getLogger("connector.test").warning("the platform echoed %s back", STORED_GLU_KEY)
    assert STORED_GLU_KEY not in caplog.text and "[redacted]" in caplog.text


# -- queued work when a setting goes away --------------------------------------------------------


def test_removing_a_source_ends_its_queued_webhook_ignored(store_settings, redis, sandbox, work):
    store = TenantStore.open(redis, SECRET_KEY)
    store.create("lagoon", lagoon(sandbox.url))
    client = create_app(store_settings).test_client()
    accepted = post_order(client)
    assert accepted.status_code == 202
    store.update("lagoon", lambda doc: {**doc, "sources": {}})
    work()
    job = get_queue(redis, INGEST_QUEUE).fetch_job(accepted.json["job"])
    assert job is not None and job.get_status() == "finished"
    result = job.return_value()
    assert result["status"] == "ignored" and "source shopify was removed" in result["reason"]
    assert sandbox.sandboxes.glu.state()["activities"] == []


def test_changing_the_platform_ends_queued_deliveries_ignored(store_settings, redis, sandbox, work):
    store = TenantStore.open(redis, SECRET_KEY)
    store.create("lagoon", lagoon(sandbox.url))
    client = create_app(store_settings).test_client()
    assert post_order(client).status_code == 202
    worker_directory = jobs.tenants()
    worker_directory.refresh()
    ingest_job = get_queue(redis, INGEST_QUEUE).jobs[0]
    # The ingest job's own delivery attempt fails (503): the delivery job stays queued for its retry.
    sandbox.sandboxes.glu.faults.arm({"mode": "status", "status": 503, "count": 1})
    ingest_result = jobs.ingest(*ingest_job.args)
    assert ingest_result["status"] == "translated"
    store.update("lagoon", lambda doc: {key: value for key, value in doc.items() if key != "loyalty"})
    get_queue(redis, INGEST_QUEUE).empty()
    work()
    delivery = get_queue(redis, DELIVERY_QUEUE).fetch_job(ingest_result["deliveries"][0])
    assert delivery is not None and delivery.get_status() == "finished"
    result = delivery.return_value()
    assert result["status"] == "ignored"
    assert "queued for glu, but the tenant's loyalty platform is now no loyalty platform" in result["reason"]
    assert sandbox.sandboxes.glu.state()["activities"] == []


def test_deleting_a_tenant_ends_its_queued_webhook_ignored(store_settings, redis, sandbox, work):
    store = TenantStore.open(redis, SECRET_KEY)
    store.create("lagoon", lagoon(sandbox.url))
    accepted = post_order(create_app(store_settings).test_client())
    store.delete("lagoon")
    work()
    job = get_queue(redis, INGEST_QUEUE).fetch_job(accepted.json["job"])
    assert job is not None and job.return_value()["status"] == "ignored"
    assert "tenant 'lagoon' was removed" in job.return_value()["reason"]


# -- the operator's commands -----------------------------------------------------------------------


def test_tenants_add_then_merchant_link(store_settings, redis, capsys):
    cli.main(["tenants", "add", "lagoon", "--timezone", "Europe/Lisbon"])
    assert "tenant lagoon created" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        cli.main(["tenants", "add", "lagoon"])
    assert exited.value.code == 1 and "already a tenant" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["tenants", "add", "harbour"])  # a tenants-file name
    capsys.readouterr()
    cli.main(["merchant-link", "--tenant", "lagoon", "--valid", "2h"])
    out = capsys.readouterr()
    url = out.out.strip()
    assert "/app/sign-in?token=" in url and "valid for 2 hours" in out.err
    link = read_link_token(SECRET_KEY, url.split("token=", 1)[1])
    assert link.tenant == "lagoon" and link.valid_seconds == 7200
    cli.main(["tenants", "list"])
    listed = capsys.readouterr().out
    assert "lagoon\tstore\tunconfigured" in listed and "harbour\tfile\tglu" in listed


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["merchant-link", "--tenant", "nobody"], "no tenant 'nobody'"),
        (["merchant-link", "--tenant", "harbour", "--valid", "30d"], "between one minute and seven days"),
        (["merchant-link", "--tenant", "harbour", "--valid", "soon"], "not a duration"),
        (["tenants", "add", "Bad Name"], "lower-case letters"),
        (["tenants", "add", "sign-in"], "reserved"),
        (["tenants", "add", "lagoon", "--timezone", "Mars/Olympus"], "unknown timezone"),
    ],
)
def test_the_operators_commands_refuse_clearly(store_settings, redis, capsys, argv, message):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code in (1, 2)
    assert message in capsys.readouterr().err


def test_the_commands_need_a_stable_secret_key(env, redis, capsys, monkeypatch):
    env()
    monkeypatch.delenv("CONNECTOR_SECRET_KEY", raising=False)
    with pytest.raises(SystemExit) as exited:
        cli.main(["merchant-link", "--tenant", "harbour"])
    assert exited.value.code == 1 and "stable CONNECTOR_SECRET_KEY" in capsys.readouterr().err


def test_check_config_lists_stored_tenants_and_a_wrong_key_stops_everything(
    store_settings, redis, sandbox, capsys, monkeypatch
):
    store = TenantStore.open(redis, SECRET_KEY)
    store.create("lagoon", lagoon(sandbox.url))
    broken = lagoon(sandbox.url)
    broken["loyalty"]["base_url"] = "not a url"
    store.create("reef", broken)
    cli.main(["check-config"])
    out = capsys.readouterr().out
    assert "tenant store: 2 stored tenants" in out
    assert "lagoon: glu; sources: shopify" in out
    assert "reef: WARNING, not served: tenants.reef.loyalty.base_url" in out
    monkeypatch.setenv("CONNECTOR_SECRET_KEY", "a-different-key-entirely")
    for command in (["check-config"], ["worker", "--burst"]):
        with pytest.raises(SystemExit) as stopped:
            cli.main(command)
        assert stopped.value.code == 1
        captured = capsys.readouterr()
        assert "CONNECTOR_SECRET_KEY is not the key the stored tenant store secrets" in captured.out + captured.err
