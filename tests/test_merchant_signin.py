"""Signing in to the merchant pages, in a real browser: a link, support staff, and the refusals
(an expired link, a used link, a foreign tenant's session, a form without its CSRF token)."""

from __future__ import annotations

import re

import requests
from browser_support import SECRET_KEY, MerchantStack, screenshot
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from playwright.sync_api import Page, expect

from connector.merchant_links import make_link_token


def test_a_link_signs_in_once_and_opens_only_its_tenant(merchant_stack: MerchantStack, page: Page) -> None:
    merchant_stack.create_tenant("lagoon")
    merchant_stack.create_tenant("reef")
    link = merchant_stack.link("lagoon")
    page.goto(link)
    expect(page.get_by_role("heading", name="Sign in to lagoon")).to_be_visible()
    screenshot(page, "sign-in")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/app/lagoon/$"))
    expect(page.get_by_role("heading", name="lagoon")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "connector_merchant")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["expires"] > 0

    page.goto(f"{merchant_stack.url}/app/reef/")  # another tenant's pages
    expect(page.get_by_role("alert")).to_contain_text("belongs to another tenant")

    page.goto(link)  # the same link again
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("already used")


def test_an_expired_link_is_refused(merchant_stack: MerchantStack, page: Page) -> None:
    merchant_stack.create_tenant("lagoon")

    # Signed 2 hours ago, valid for one: what a link left in a mailbox looks like the next day.
    class TwoHoursAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return super().get_timestamp() - 7200

    serializer = URLSafeTimedSerializer(SECRET_KEY, salt="connector.merchant.link", signer=TwoHoursAgo)
    token = serializer.dumps({"t": "lagoon", "n": "n1", "v": 3600})
    page.goto(f"{merchant_stack.url}/app/sign-in?token={token}")
    expect(page.get_by_role("alert")).to_contain_text("expired")
    assert page.context.cookies() == [] or all(c["name"] != "connector_merchant" for c in page.context.cookies())


def test_support_staff_open_any_tenant(merchant_stack: MerchantStack, page: Page) -> None:
    merchant_stack.create_tenant("lagoon")
    merchant_stack.sign_in_as_admin(page)
    expect(page.get_by_role("heading", name="Tenants")).to_be_visible()
    expect(page.get_by_role("link", name="harbour")).to_be_visible()  # a tenants-file tenant
    screenshot(page, "tenants")
    page.get_by_role("link", name="lagoon").click()
    expect(page.get_by_role("heading", name="lagoon")).to_be_visible()


def test_a_form_without_its_csrf_token_is_refused(merchant_stack: MerchantStack, page: Page) -> None:
    merchant_stack.create_tenant("lagoon")
    merchant_stack.sign_in(page, "lagoon")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    answer = requests.post(
        f"{merchant_stack.url}/app/sign-out", cookies=cookies, data={}, timeout=5, allow_redirects=False
    )
    assert answer.status_code == 403
    assert "expired or was not sent from this page" in answer.text
    forged = make_link_token("another-key-entirely-0123456789", "lagoon", 3600)
    page.goto(f"{merchant_stack.url}/app/sign-in?token={forged}")
    expect(page.get_by_role("alert")).to_contain_text("not valid")
