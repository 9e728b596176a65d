"""The issue's whole journey in one real browser, on the real stack (gunicorn, a worker process,
the sandboxes): support staff onboard a hotel group; its merchant signs in with a link, connects
Glu with Test connection, adds Mews and copies its URL; a signed Mews webhook to that URL becomes a
delivery on the Activity page; a delivery the sandbox refuses shows first and is retried from the
page, once; the Mews token is rotated with an overlap; and every page fits a phone's width."""

from __future__ import annotations

import re
import time

import requests
from browser_support import MerchantStack, screenshot
from conftest import load_fixture
from playwright.sync_api import Page, expect
from pms_helpers import fixture_json

from connector import activity_log
from connector.directory import RECHECK_SECONDS
from connector.sandbox.server import DEFAULT_KEYS

TENANT = "coral-bay"
PHONE = {"width": 390, "height": 844}


def settled() -> None:
    """Every gunicorn worker serves a settings change within RECHECK_SECONDS."""
    time.sleep(RECHECK_SECONDS + 0.2)


def fits_a_phone(page: Page) -> None:
    """The page at a phone's width: nothing wider than the screen (tables scroll in their box)."""
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    try:
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], page.url
    finally:
        if size:
            page.set_viewport_size(size)


def glu_types(stack: MerchantStack) -> list[str]:
    return [str(a["type"]) for a in stack.sandbox.sandboxes.glu.state()["activities"]]


def test_onboard_connect_receive_fail_retry_and_rotate(merchant_stack: MerchantStack, page: Page, chromium) -> None:
    stack = merchant_stack
    mews = stack.sandbox.sandboxes.extra["mews"]
    mews.seed("customers", fixture_json("mews", "customer"))
    mews.seed("resource_categories", fixture_json("mews", "resource_category"))
    mews.seed("order_items", *fixture_json("mews", "order_items"))
    mews.seed("reservations", fixture_json("mews", "reservation_confirmed"))

    # Support staff onboard the hotel group and send its merchant a sign-in link.
    staff = chromium.new_context()
    staff_page = staff.new_page()
    stack.sign_in_as_admin(staff_page)
    staff_page.get_by_label("Name").fill(TENANT)
    staff_page.get_by_label("Timezone").fill("Atlantic/Canary")
    staff_page.get_by_role("button", name="Create").click()
    expect(staff_page.get_by_role("heading", name=TENANT)).to_be_visible()
    staff.close()

    # The merchant signs in with the link; their session opens only their tenant.
    stack.sign_in(page, TENANT)
    expect(page.get_by_role("link", name="Choose the loyalty platform")).to_be_visible()
    expect(page.get_by_text("activities wait for it")).to_be_visible()
    fits_a_phone(page)
    page.goto(f"{stack.url}/app/harbour/")
    expect(page.get_by_role("alert")).to_contain_text("belongs to another tenant")
    page.goto(f"{stack.url}/app/{TENANT}/")

    # Loyalty platform: Glu on the sandbox, then Test connection.
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Loyalty platform").click()
    page.get_by_label("Platform").select_option("glu")
    page.get_by_role("button", name="Choose").click()
    page.get_by_label("Base url").fill(f"{stack.sandbox.url}/glu")
    page.get_by_text("More settings").click()
    page.get_by_label("Api key").fill(DEFAULT_KEYS["glu"])
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_role("status")).to_contain_text("Connected to glu")
    fits_a_phone(page)

    # Sources: add Mews, copy its URL.
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Sources").click()
    page.get_by_label("Source").select_option("mews")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Client token").fill(DEFAULT_KEYS["mews_client_token"])
    page.get_by_label("Access token").fill(DEFAULT_KEYS["mews_access_token"])
    page.get_by_text("More settings").click()
    page.get_by_label("Api url").fill(f"{stack.sandbox.url}/mews")
    page.get_by_role("button", name="Add Mews").click()
    expect(page.get_by_role("status")).to_contain_text("Mews added")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.url)
    page.get_by_role("button", name="Copy Webhook URL of Mews").click()
    url = str(page.evaluate("navigator.clipboard.readText()"))
    assert re.fullmatch(rf"{re.escape(stack.url)}/webhooks/{TENANT}/mews/[A-Za-z0-9_-]{{43}}", url)
    fits_a_phone(page)

    # Mews calls that URL: the booking is delivered and shows on the Activity page.
    message = load_fixture("mews", "general_webhook")

    def mews_sends(to: str) -> int:
        return requests.post(to, data=message, headers={"Content-Type": "application/json"}, timeout=5).status_code

    settled()
    assert mews_sends(url) == 202
    stack.wait_for(lambda: "Booking" in glu_types(stack), what="the booking at Glu")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Activity").click()
    expect(page.get_by_role("table", name="mews")).to_contain_text("delivered")

    # The guest checks in, and Glu refuses that delivery: it shows first, with its reason.
    assert requests.post(
        f"{stack.sandbox.url}/glu/_sandbox/faults", json={"mode": "status", "status": 401, "count": 1}, timeout=5
    ).ok
    mews.seed("reservations", fixture_json("mews", "reservation_started"))
    assert mews_sends(url) == 202
    stack.wait_for(lambda: activity_log.failures(stack.redis, TENANT), what="the refused delivery")
    page.get_by_role("link", name="Refresh").click()
    failures = page.get_by_role("table", name="Failures")
    expect(failures).to_contain_text("401")
    assert DEFAULT_KEYS["glu"] not in page.content()
    fits_a_phone(page)

    # Retried from the page once it is fixed: delivered, and only once.
    assert requests.delete(f"{stack.sandbox.url}/glu/_sandbox/faults", timeout=5).ok
    failures.get_by_role("button", name=re.compile("Retry")).click()
    expect(page.get_by_role("status")).to_contain_text("Retry queued")
    stack.wait_for(lambda: "Checked in" in glu_types(stack), what="the retried check-in at Glu")
    time.sleep(0.5)
    assert glu_types(stack).count("Checked in") == 1 and glu_types(stack).count("Booking") == 1

    # Rotate the Mews token: old and new URLs both accepted until the rotation is finished.
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Sources").click()
    page.get_by_role("link", name=re.compile("Mews")).first.click()
    page.get_by_role("button", name="Rotate").click()
    expect(page.get_by_role("status").first).to_contain_text("Rotation started")
    new_url = page.get_by_role("textbox", name="Webhook URL of Mews", exact=True).input_value()
    settled()
    assert (mews_sends(url), mews_sends(new_url)) == (202, 202)
    page.get_by_role("button", name="Finish rotation").click()
    expect(page.get_by_role("status").first).to_contain_text("Rotation finished")
    settled()
    assert (mews_sends(url), mews_sends(new_url)) == (401, 202)

    # The overview: set up, the last webhook, no failure left.
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Overview").click()
    expect(page.get_by_text("done: glu")).to_be_visible()
    expect(page.get_by_text("done: mews")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)
    screenshot(page, "overview")

    # The email provider page fits a phone too.
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Email provider").click()
    expect(page.get_by_role("heading", name="Email provider")).to_be_visible()
    fits_a_phone(page)
