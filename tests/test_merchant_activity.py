"""The Activity page in a real browser, on the real stack (gunicorn, a worker process, the Glu
sandbox): a signed webhook's delivery appears, a delivery the sandbox refuses shows first as a
failure with its reason (and no secret), Retry delivers it, and pressing Retry again (the same
form sent twice) never makes a second activity."""

from __future__ import annotations

import re

import requests
from browser_support import MerchantStack, screenshot
from conftest import GLU_KEY, SHOPIFY_SECRET, load_fixture, shopify_headers
from playwright.sync_api import Page, expect

from connector import activity_log


def send_order(stack: MerchantStack, fixture: str, webhook_id: str) -> None:
    """A Shopify order webhook for harbour, signed as Shopify signs it, to the running gunicorn."""
    body = load_fixture("shopify", fixture)
    answer = requests.post(
        f"{stack.url}/webhooks/harbour/shopify",
        data=body,
        headers=shopify_headers(body, webhook_id=webhook_id),
        timeout=5,
    )
    assert answer.status_code == 202, answer.text


def glu_activities(stack: MerchantStack) -> list[dict[str, object]]:
    return list(stack.sandbox.sandboxes.glu.state()["activities"])


def test_a_failed_delivery_is_shown_first_and_retried_once(merchant_stack: MerchantStack, page: Page) -> None:
    stack = merchant_stack
    stack.sign_in(page, "harbour")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Activity").click()
    expect(page.get_by_role("heading", name="Activity")).to_be_visible()
    expect(page.get_by_text("No failures.")).to_be_visible()

    send_order(stack, "orders_paid", "webhook-one")
    stack.wait_for(lambda: glu_activities(stack), what="the first order's activity")
    page.get_by_role("link", name="Refresh").click()
    deliveries = page.get_by_role("table", name="shopify")
    expect(deliveries.get_by_text("delivered")).to_be_visible()

    # The next delivery is refused for good (401: no retry can fix it).
    fault = requests.post(
        f"{stack.sandbox.url}/glu/_sandbox/faults", json={"mode": "status", "status": 401, "count": 1}, timeout=5
    )
    assert fault.ok
    send_order(stack, "orders_paid__jpy", "webhook-two")
    stack.wait_for(lambda: activity_log.failures(stack.redis, "harbour"), what="the failure record")
    page.reload()
    failures = page.get_by_role("table", name="Failures")
    expect(failures.get_by_text("failed")).to_be_visible()
    expect(failures).to_contain_text("401")
    content = page.content()
    assert page.get_by_role("heading", name="Failures").bounding_box()["y"] < deliveries.bounding_box()["y"]
    assert GLU_KEY not in content and SHOPIFY_SECRET not in content and "kenji.sato" not in content
    screenshot(page, "activity")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the tables scroll inside their box
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(failures.get_by_role("button", name=re.compile("Retry"))).to_be_visible()
    page.set_viewport_size({"width": 1100, "height": 900})

    assert requests.delete(f"{stack.sandbox.url}/glu/_sandbox/faults", timeout=5).ok
    form = page.locator("form[action$='/activity/retry']")
    fields = {name: form.locator(f"input[name={name}]").get_attribute("value") for name in ("csrf_token", "job")}
    form.get_by_role("button", name=re.compile("Retry")).click()
    expect(page.get_by_role("status")).to_contain_text("Retry queued")
    # Retrying (or, if the worker was quicker than the page, delivered): no longer a failure.
    expect(page.get_by_text("No failures.")).to_be_visible()

    # The same form again (a double press, a resent form): refused, nothing more is sent.
    again = page.request.post(f"{stack.url}/app/harbour/activity/retry", form=fields, max_redirects=0)
    assert again.status == 409 and "already retried" in again.text()

    stack.wait_for(lambda: len(glu_activities(stack)) == 2, what="the retried order's activity")
    page.get_by_role("link", name="Refresh").click()
    expect(page.get_by_text("No failures.")).to_be_visible()
    expect(page.get_by_role("table", name="shopify").get_by_text("delivered")).to_have_count(2)
    references = [a["externalReference"] for a in glu_activities(stack)]
    assert len(references) == len(set(references)) == 2  # each order once: the retry never doubled
