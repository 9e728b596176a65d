"""The Email provider page's rules with the Flask test client: credentials write-only, the events
filter (all checked = no filter), unknown providers refused, removal, where the platform's
webhooks go, and the check job on the saved provider."""

from __future__ import annotations

from typing import Any

import pytest
from merchant_client import MerchantClient, merchant_env, store

from connector import connection_check
from connector.activities import LOYALTY_EVENT_NAMES
from connector.sandbox.server import DEFAULT_KEYS, SandboxServer

TYPED_KEY = "pk_typed_klaviyo_key_8765"
TWO = ["customer.loyalty.tier.upgraded", "customer.rewarded"]


@pytest.fixture
def pages(env: Any, redis: Any) -> MerchantClient:
    settings = merchant_env(env, CONNECTOR_PUBLIC_URL="https://connector.example")
    store(redis).create("lagoon", {"timezone": "Europe/London"})
    return MerchantClient(settings).sign_in("lagoon")


def klaviyo_form(sandbox: SandboxServer, key: str = DEFAULT_KEYS["klaviyo"], events: list[str] = TWO) -> dict:
    return {
        "provider": "klaviyo",
        "klaviyo.api_key": key,
        "klaviyo.base_url": f"{sandbox.url}/klaviyo",
        "esp.events": events,
    }


def test_two_events_are_a_filter_and_all_of_them_none(pages: MerchantClient, sandbox, redis) -> None:
    saved = pages.post("/app/lagoon/email", klaviyo_form(sandbox, TYPED_KEY))
    assert saved.status_code == 303, saved.get_data(as_text=True)
    esp = store(redis).get("lagoon").document["esp"]
    assert esp["events"] == ["customer.rewarded", "customer.loyalty.tier.upgraded"]  # in the canonical order
    html = pages.get("/app/lagoon/email").get_data(as_text=True)
    assert TYPED_KEY not in html and "8765" in html
    assert 'value="customer.rewarded" checked' in html and 'value="customer.created" checked' not in html

    pages.post("/app/lagoon/email", klaviyo_form(sandbox, "", events=list(LOYALTY_EVENT_NAMES)))
    esp = store(redis).get("lagoon").document["esp"]
    assert "events" not in esp and esp["api_key"] == TYPED_KEY  # no filter; the stored key kept


def test_no_event_picked_is_refused_by_key(pages: MerchantClient, sandbox, redis) -> None:
    refused = pages.post("/app/lagoon/email", klaviyo_form(sandbox, TYPED_KEY, events=[]))
    assert refused.status_code == 400 and "esp.events" in refused.get_data(as_text=True)
    assert TYPED_KEY not in refused.get_data(as_text=True)
    assert "esp" not in store(redis).get("lagoon").document


def test_a_bad_event_name_override_names_its_key(pages: MerchantClient, sandbox) -> None:
    form = {**klaviyo_form(sandbox), "klaviyo.names": "customer.unknown = Whatever"}
    refused = pages.post("/app/lagoon/email", form)
    assert refused.status_code == 400 and "esp.names" in refused.get_data(as_text=True)


def test_unknown_providers_are_refused(pages: MerchantClient) -> None:
    assert pages.get("/app/lagoon/email?provider=sendgrid").status_code == 400
    pages.get("/app/lagoon/email")
    assert pages.post("/app/lagoon/email", {"provider": "sendgrid"}).status_code == 400


def test_removing_the_provider_forgets_its_keys(pages: MerchantClient, sandbox, redis) -> None:
    pages.post("/app/lagoon/email", klaviyo_form(sandbox, TYPED_KEY))
    pages.get("/app/lagoon/email")
    removed = pages.post("/app/lagoon/email/remove", {})
    assert removed.status_code == 303
    record = store(redis).get("lagoon")
    assert "esp" not in record.document and record.secret_hint("esp.api_key") is None
    assert "Email provider removed" in pages.get("/app/lagoon/email?done=removed").get_data(as_text=True)


def test_the_page_says_where_the_platform_sends_its_events(pages: MerchantClient, redis) -> None:
    html = pages.get("/app/lagoon/email").get_data(as_text=True)
    assert "add the <strong>standard</strong> source" in html
    store(redis).update(
        "lagoon",
        lambda d: {**d, "sources": {"voucherify": {"secrets": ["a-voucherify-webhook-secret"]}}},
        secrets_set=["sources.voucherify.secrets"],
    )
    pages.refresh()
    html = pages.get("/app/lagoon/email").get_data(as_text=True)
    assert "https://connector.example/webhooks/lagoon/voucherify" in html


def test_a_file_tenant_cannot_change_its_provider(env: Any, redis) -> None:
    pages = MerchantClient(merchant_env(env)).sign_in("harbour")
    assert pages.get("/app/harbour/email").status_code == 200
    assert pages.post("/app/harbour/email", {"provider": "klaviyo"}).status_code == 403
    assert pages.post("/app/harbour/email/remove", {}).status_code == 403


def test_the_check_job_tests_the_saved_provider(pages: MerchantClient, sandbox) -> None:
    pages.post("/app/lagoon/email", klaviyo_form(sandbox))
    connection_check.jobs.tenants().refresh()
    good = connection_check.check("lagoon", "email")
    assert good["ok"] and good["vendor"] == "klaviyo" and "Sandbox Klaviyo account" in good["said"]
    pages.get("/app/lagoon/email")
    pages.post("/app/lagoon/email", klaviyo_form(sandbox, TYPED_KEY))
    connection_check.jobs.tenants().refresh()
    refused = connection_check.check("lagoon", "email")
    assert refused["status"] == 401 and TYPED_KEY not in str(refused) and refused["hint"]
