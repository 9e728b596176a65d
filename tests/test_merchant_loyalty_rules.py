"""The Loyalty platform page's rules with the Flask test client (the browser test walks the happy
path): secrets are write-only and never in a page, a file tenant cannot be changed, bad input is a
4xx naming the key, and the "Test connection" job answers with the saved settings, redacted."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import GLU_KEY
from merchant_client import MerchantClient, merchant_env, store
from stack_helpers import redis_texts

from connector import connection_check
from connector.sandbox.server import SandboxServer

TYPED_KEY = "typed-glu-key-4321"


@pytest.fixture
def pages(env: Any, redis: Any) -> MerchantClient:
    settings = merchant_env(env, CONNECTOR_HTTP_TIMEOUT="1")
    store(redis).create("lagoon", {"timezone": "Europe/London"})
    return MerchantClient(settings).sign_in("lagoon")


def glu_form(sandbox: SandboxServer, key: str = GLU_KEY, **more: str) -> dict[str, str]:
    return {"platform": "glu", "glu.base_url": f"{sandbox.url}/glu", "glu.api_key": key, **more}


def test_a_saved_key_is_never_shown_back_only_its_last_four(pages: MerchantClient, sandbox, redis) -> None:
    saved = pages.post("/app/lagoon/loyalty", glu_form(sandbox, TYPED_KEY))
    assert saved.status_code == 303, saved.get_data(as_text=True)
    html = pages.get("/app/lagoon/loyalty?saved=1").get_data(as_text=True)
    assert TYPED_KEY not in html and "4321" in html and "Saved." in html
    assert f"{sandbox.url}/glu" in html  # the non-secret values are shown
    record = store(redis).get("lagoon")
    assert record is not None and record.document["loyalty"]["api_key"] == TYPED_KEY
    assert record.secret_hint("loyalty.api_key")["last4"] == "4321"
    assert not [key for key, text in redis_texts(redis) if TYPED_KEY in text]  # sealed at rest


def test_an_empty_secret_field_keeps_the_stored_key(pages: MerchantClient, sandbox, redis) -> None:
    pages.post("/app/lagoon/loyalty", glu_form(sandbox, TYPED_KEY))
    pages.get("/app/lagoon/loyalty")
    again = pages.post("/app/lagoon/loyalty", glu_form(sandbox, "", **{"glu.skip_shopify_orders": "true"}))
    assert again.status_code == 303
    loyalty = store(redis).get("lagoon").document["loyalty"]
    assert loyalty["api_key"] == TYPED_KEY and loyalty["skip_shopify_orders"] is True


def test_a_validation_error_names_the_key_keeps_the_typed_values_and_never_the_secret(
    pages: MerchantClient, redis
) -> None:
    refused = pages.post(
        "/app/lagoon/loyalty", {"platform": "glu", "glu.base_url": "ftp://glu.example", "glu.api_key": TYPED_KEY}
    )
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "loyalty.base_url" in html and "ftp://glu.example" in html
    assert TYPED_KEY not in html
    assert "loyalty" not in store(redis).get("lagoon").document


def test_switching_platform_discards_the_old_keys(pages: MerchantClient, sandbox, redis) -> None:
    pages.post("/app/lagoon/loyalty", glu_form(sandbox, TYPED_KEY))
    html = pages.get("/app/lagoon/loyalty?platform=voucherify").get_data(as_text=True)
    assert "switches from glu to voucherify" in html and "app_id" in html.lower()
    switched = pages.post(
        "/app/lagoon/loyalty",
        {
            "platform": "voucherify",
            "voucherify.app_id": "app-1",
            "voucherify.app_token": "voucherify-token-9876",
            "voucherify.base_url": f"{sandbox.url}/voucherify",
        },
    )
    assert switched.status_code == 303, switched.get_data(as_text=True)
    record = store(redis).get("lagoon")
    assert record.document["loyalty"]["platform"] == "voucherify"
    assert "api_key" not in record.document["loyalty"]
    assert record.secret_hint("loyalty.api_key") is None and record.secret_hint("loyalty.app_token")


def test_unknown_platforms_are_refused(pages: MerchantClient) -> None:
    assert pages.get("/app/lagoon/loyalty?platform=smile").status_code == 400
    pages.get("/app/lagoon/loyalty")
    assert pages.post("/app/lagoon/loyalty", {"platform": "smile"}).status_code == 400


def test_a_form_without_csrf_is_refused(pages: MerchantClient, sandbox, redis) -> None:
    refused = pages.post("/app/lagoon/loyalty", glu_form(sandbox), csrf=False)
    assert refused.status_code == 403
    assert "loyalty" not in store(redis).get("lagoon").document


def test_an_env_reference_is_kept_literally(pages: MerchantClient, sandbox, redis, monkeypatch) -> None:
    monkeypatch.setenv("SOMETHING", "a-value-from-the-environment")
    saved = pages.post("/app/lagoon/loyalty", glu_form(sandbox, "env:SOMETHING"))
    assert saved.status_code == 303
    assert store(redis).get("lagoon").document["loyalty"]["api_key"] == "env:SOMETHING"
    served = connection_check.jobs.tenants()
    served.refresh()
    tenant = served.get("lagoon")
    assert tenant is not None and tenant.loyalty.api_key.get_secret_value() == "env:SOMETHING"


def test_a_file_tenant_is_shown_read_only(env: Any, redis) -> None:
    pages = MerchantClient(merchant_env(env)).sign_in("harbour")
    html = pages.get("/app/harbour/loyalty").get_data(as_text=True)
    assert "configured in the operator's tenants file" in html and "/glu" in html
    assert GLU_KEY not in html and "fieldset disabled" in html
    refused = pages.post("/app/harbour/loyalty", {"platform": "glu", "glu.base_url": "https://glu.example"})
    assert refused.status_code == 403
    assert store(redis).get("harbour") is None


def test_the_check_job_tests_the_saved_settings_and_redacts_the_answer(pages: MerchantClient, sandbox, redis) -> None:
    pages.post("/app/lagoon/loyalty", glu_form(sandbox))
    connection_check.jobs.tenants().refresh()
    good = connection_check.check("lagoon", "loyalty")
    assert good["ok"] and good["status"] == 200 and good["vendor"] == "glu" and not good["hint"]

    pages.get("/app/lagoon/loyalty")
    pages.post("/app/lagoon/loyalty", glu_form(sandbox, TYPED_KEY))
    connection_check.jobs.tenants().refresh()
    refused = connection_check.check("lagoon", "loyalty")
    assert not refused["ok"] and refused["status"] == 403
    assert "key is wrong or lacks a scope" in refused["hint"]
    assert TYPED_KEY not in str(refused)
    assert connection_check.check("lagoon", "email")["said"] == "no email provider is saved yet"
    assert not connection_check.check("nobody", "loyalty")["ok"]


def test_test_connection_without_a_worker_says_so_in_bounded_time(pages: MerchantClient, sandbox) -> None:
    pages.post("/app/lagoon/loyalty", glu_form(sandbox))
    pages.get("/app/lagoon/loyalty")
    started = time.monotonic()
    answer = pages.post("/app/lagoon/loyalty/test", {})
    assert time.monotonic() - started < 10
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "no worker answered within 6 s" in html
    assert "connector worker" in html
