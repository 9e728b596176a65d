"""The Loyalty platform and Email provider pages in a real browser, against the real stack (gunicorn,
a ``connector worker`` process, the sandboxes): connect Glu, test the connection, see a wrong key
refused without the key on the page; connect Klaviyo with two events and test it."""

from __future__ import annotations

import re

from browser_support import SECRET_KEY, MerchantStack, screenshot
from playwright.sync_api import Page, expect

from connector.sandbox.server import DEFAULT_KEYS
from connector.tenant_store import TenantStore

WRONG_KEY = "a-wrong-glu-key-1234"
TWO = ("customer.loyalty.tier.upgraded", "customer.rewarded")


def test_connect_glu_and_test_the_connection(merchant_stack: MerchantStack, page: Page) -> None:
    merchant_stack.create_tenant("lagoon")
    merchant_stack.sign_in(page, "lagoon")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Loyalty platform").click()
    expect(page.get_by_role("heading", name="Loyalty platform")).to_be_visible()
    page.get_by_label("Platform").select_option("glu")
    page.get_by_role("button", name="Choose").click()
    page.get_by_label("Base url").fill(f"{merchant_stack.sandbox.url}/glu")
    page.get_by_text("More settings").click()
    page.get_by_label("Api key").fill(DEFAULT_KEYS["glu"])
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    expect(page.get_by_text("Activities are sent to glu")).to_be_visible()

    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_role("status")).to_contain_text("Connected to glu")
    expect(page.get_by_role("status")).to_contain_text("HTTP 200")
    screenshot(page, "loyalty")

    page.get_by_text("More settings").click()
    page.get_by_label("Api key").fill(WRONG_KEY)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    page.get_by_role("button", name="Test connection").click()
    refusal = page.get_by_role("alert")
    expect(refusal).to_contain_text("refused the connection (HTTP 403")
    expect(refusal).to_contain_text("the key is wrong or lacks a scope")
    expect(refusal).to_contain_text("Invalid or missing x-api-key")  # Glu's own answer
    assert WRONG_KEY not in page.content() and DEFAULT_KEYS["glu"] not in page.content()
    assert "1234" in page.content()  # its last four, as the hint of the stored key


def test_connect_klaviyo_with_two_events(merchant_stack: MerchantStack, page: Page) -> None:
    merchant_stack.create_tenant("lagoon")
    merchant_stack.sign_in(page, "lagoon")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Email provider").click()
    page.get_by_label("Provider").select_option("klaviyo")
    page.get_by_role("button", name="Choose").click()
    page.get_by_label("Api key").fill(DEFAULT_KEYS["klaviyo"])
    page.get_by_text("More settings").click()
    page.get_by_label("Base url").fill(f"{merchant_stack.sandbox.url}/klaviyo")
    events = page.locator('input[name="esp.events"]')
    for index in range(events.count()):
        box = events.nth(index)
        box.set_checked(box.get_attribute("value") in TWO)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    stored = TenantStore.open(merchant_stack.redis, SECRET_KEY).get("lagoon")
    assert stored is not None and sorted(stored.document["esp"]["events"]) == sorted(TWO)

    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_role("status")).to_contain_text("Connected to klaviyo: account Sandbox Klaviyo account")
    expect(page.locator('input[name="esp.events"]:checked')).to_have_count(2)
    expect(page.get_by_role("note")).to_contain_text("add the standard source")
    screenshot(page, "email")
    assert re.search(r"/app/lagoon/email/test$", page.url)
