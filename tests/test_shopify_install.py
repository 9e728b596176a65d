"""Installing the connector as a Shopify app, end to end: the real web app (Flask test client), a
real Redis, the Shopify sandbox over HTTP (authorize, code exchange, GraphQL), a real worker."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from conftest import GLU_KEY, load_fixture, shopify_headers, tenants_toml
from stack_helpers import redis_texts

from connector.tenant_store import TenantStore
from connector.vendors.shopify import oauth
from connector.vendors.shopify.installations import INSTALLATIONS_KEY, InstallationStore
from connector.vendors.shopify.sandbox import KEYS, install_link
from connector.vendors.shopify.subscriptions import ensure_subscriptions
from connector.web import create_app

PUBLIC = "https://connector.example"
SHOP = "lighthouse-cafe.myshopify.com"
SECRET = KEYS["shopify_api_secret"]
SECRET_KEY = "a-stable-secret-key-of-the-operator"
PAGES = "/app/lighthouse-cafe/"


@pytest.fixture
def app_env(env, sandbox):
    return env(
        tenants_toml(sandbox.url),
        SHOPIFY_API_KEY=KEYS["shopify_api_key"],
        SHOPIFY_API_SECRET=SECRET,
        CONNECTOR_PUBLIC_URL=PUBLIC,
        CONNECTOR_SECRET_KEY=SECRET_KEY,
        CONNECTOR_SHOPIFY_ADMIN_URL=f"{sandbox.url}/shopify/{{shop}}",
    )


@pytest.fixture
def shopify(sandbox):
    return sandbox.sandboxes.extra["shopify"]


class Browser:
    """One browser (its own cookie jar) on the web app, at the public URL."""

    def __init__(self, settings: Any) -> None:
        self.app = create_app(settings)
        self.client = self.app.test_client()

    def get(self, url: str, **kwargs: Any) -> Any:
        parts = urlsplit(url)
        target = f"{parts.path}?{parts.query}" if parts.query else parts.path
        return self.client.get(target, base_url=PUBLIC, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.client.post(path, base_url=PUBLIC, **kwargs)

    def authorize(self, shop: str = SHOP) -> str:
        """Open the App URL and approve at the (sandbox) shop: the callback URL Shopify redirects to."""
        response = self.get(install_link(PUBLIC, SECRET, shop))
        assert response.status_code == 302, response.get_data(as_text=True)
        approved = requests.get(response.headers["Location"], allow_redirects=False, timeout=10)
        assert approved.status_code == 302, approved.text
        location = approved.headers["Location"]
        assert location.startswith(f"{PUBLIC}/shopify/callback?")
        return location

    def install(self, shop: str = SHOP) -> Any:
        return self.get(self.authorize(shop))

    def csrf(self, path: str = f"{PAGES}loyalty") -> str:
        page = self.get(path).get_data(as_text=True)
        marker = 'name="csrf_token" value="'
        return page.split(marker, 1)[1].split('"', 1)[0]


def store_of(settings: Any, redis: Any) -> InstallationStore:
    return InstallationStore.open(redis, settings.secret_key.get_secret_value())


def stored_loyalty(redis: Any, tenant: str = "lighthouse-cafe") -> dict[str, Any] | None:
    """The loyalty table the merchant pages saved for the tenant (``None``: none)."""
    record = TenantStore.open(redis, SECRET_KEY).get(tenant)
    return record.document.get("loyalty") if record is not None else None


def nothing_stored(redis: Any) -> bool:
    return not redis.hgetall(INSTALLATIONS_KEY)


# -- the pure checks ------------------------------------------------------------------------------


def test_the_query_hmac_is_shopifys_documented_example():
    # shopify.dev "Implement authorization code grant manually", step 1: this query and secret "hush".
    params = {
        "code": "0907a61c0c8d55e99db179b68161bc00",
        "shop": "some-shop.myshopify.com",
        "state": "0.6784241404160823",
        "timestamp": "1337178173",
        "hmac": "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf",
    }
    assert oauth.verify_query(params, "hush")
    assert not oauth.verify_query({**params, "shop": "other-shop.myshopify.com"}, "hush")
    assert not oauth.verify_query(params, "not-hush")


def test_write_scopes_cover_read_scopes_and_nothing_else():
    assert oauth.missing_scopes(["write_orders", "read_customers"], ["read_orders", "read_customers"]) == []
    assert oauth.missing_scopes(["read_orders"], ["write_orders"]) == ["write_orders"]
    assert oauth.missing_scopes(["read_orders"], ["read_orders", "read_customers"]) == ["read_customers"]
    assert oauth.missing_scopes(["write_products"], ["read_orders"]) == ["read_orders"]


def test_timestamps_are_fresh_for_ten_minutes_only():
    now = 1_800_000_000.0
    assert oauth.fresh(str(int(now) - 599), now=now)
    assert not oauth.fresh(str(int(now) - 601), now=now)
    assert not oauth.fresh(str(int(now) + 120), now=now)
    assert not oauth.fresh("soon", now=now)


# -- install → settings → order → activity ---------------------------------------------------------


def test_install_choose_glu_and_an_order_becomes_one_activity(app_env, redis, sandbox, shopify, work):
    started = time.monotonic()
    browser = Browser(app_env)
    done = browser.install()
    assert done.status_code == 302, done.get_data(as_text=True)
    assert done.headers["Location"] == PAGES  # signed in on its merchant pages
    cookie = next(c for c in done.headers.getlist("Set-Cookie") if c.startswith("connector_merchant="))
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie

    store = store_of(app_env, redis)
    installation = store.get(SHOP)
    assert installation is not None and installation.installed and installation.tenant == "lighthouse-cafe"
    assert installation.scopes == ["read_customers", "read_orders"]
    assert installation.timezone == "America/Toronto"  # from the shop { ianaTimezone } query
    token = store.token(SHOP)
    assert token and token.startswith("shpat_")
    assert not [key for key, text in redis_texts(redis) if token in text]  # sealed at rest
    subscriptions = shopify.state()["subscriptions"][SHOP]
    assert sorted((s["topic"], s["uri"]) for s in subscriptions) == [
        ("APP_UNINSTALLED", f"{PUBLIC}/shopify/webhooks"),
        ("ORDERS_PAID", f"{PUBLIC}/shopify/webhooks"),
    ]

    page = browser.get(f"{PAGES}loyalty?platform=glu")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "No loyalty platform is chosen yet" in html
    assert "<script>" not in html and "<script src=" in html  # no inline script
    form = {
        "csrf_token": browser.csrf(f"{PAGES}loyalty?platform=glu"),
        "platform": "glu",
        "glu.base_url": f"{sandbox.url}/glu",
        "glu.api_key": GLU_KEY,
    }
    saved = browser.post(f"{PAGES}loyalty", data=form)
    assert saved.status_code == 303, saved.get_data(as_text=True)
    shown = browser.get(saved.headers["Location"]).get_data(as_text=True)
    assert "Activities are sent to <strong>glu</strong>" in shown
    assert GLU_KEY not in shown  # secrets are never shown back
    assert stored_loyalty(redis) == {
        "platform": "glu",
        "base_url": f"{sandbox.url}/glu",
        "api_key": GLU_KEY,
        "skip_shopify_orders": False,
    }

    body = load_fixture("shopify", "orders_paid")
    webhook = browser.client.post(
        "/webhooks/lighthouse-cafe/shopify", data=body, headers=shopify_headers(body, secret=SECRET, shop=SHOP)
    )
    assert webhook.status_code == 202, webhook.get_data(as_text=True)
    work()
    activities = sandbox.sandboxes.glu.state()["activities"]
    assert len(activities) == 1
    assert activities[0]["externalReference"].startswith(f"shopify:{SHOP}:order:")
    assert time.monotonic() - started < 30


def test_a_second_install_creates_no_subscription_and_keeps_the_platform(app_env, redis, shopify):
    browser = Browser(app_env)
    assert browser.install().status_code == 302
    store = store_of(app_env, redis)
    store.set_loyalty(SHOP, {"platform": "glu", "base_url": "https://glu.example", "api_key": "k"})
    creates = [c for c in shopify.state()["graphql_calls"] if c["field"] == "webhookSubscriptionCreate"]
    assert len(creates) == 2
    store.mark_uninstalled(SHOP)  # reinstalled later: authorizes again
    assert Browser(app_env).install().status_code == 302
    calls = shopify.state()["graphql_calls"]
    assert len([c for c in calls if c["field"] == "webhookSubscriptionCreate"]) == 2
    assert len(shopify.state()["subscriptions"][SHOP]) == 2
    assert store.loyalty_table(SHOP) == {"platform": "glu", "base_url": "https://glu.example", "api_key": "k"}


def test_an_installed_shop_opening_the_app_goes_to_its_pages(app_env, shopify):
    assert Browser(app_env).install().status_code == 302
    again = Browser(app_env)  # another browser, e.g. the next day from the Shopify admin
    opened = again.get(install_link(PUBLIC, SECRET, SHOP))
    assert opened.status_code == 302 and opened.headers["Location"] == PAGES
    assert again.get(f"{PAGES}loyalty").status_code == 200
    old = again.get("/shopify/settings")  # the issue-13 page's address, e.g. a bookmark
    assert old.status_code == 301 and old.headers["Location"] == "/app/"
    assert len(shopify.state()["tokens"]) == 1  # no second authorization


def test_ensure_subscriptions_is_idempotent_on_its_own(app_env, redis):
    Browser(app_env).install()
    from connector.vendors.shopify.admin import ShopifyAdminClient

    token = store_of(app_env, redis).token(SHOP)
    client = ShopifyAdminClient(app_env.shopify_admin(SHOP), api_version=app_env.shopify_api_version, token=token)
    assert ensure_subscriptions(client, f"{PUBLIC}/shopify/webhooks", ["ORDERS_PAID", "APP_UNINSTALLED"]) == []
    assert ensure_subscriptions(client, f"{PUBLIC}/other", ["ORDERS_PAID"]) == ["ORDERS_PAID"]


# -- every refusal: 4xx, nothing stored --------------------------------------------------------------


def test_a_bad_hmac_is_refused(app_env, redis):
    browser = Browser(app_env)
    link = install_link(PUBLIC, "not-the-app-secret", SHOP)
    response = browser.get(link)
    assert response.status_code == 401 and "not signed by Shopify" in response.get_data(as_text=True)
    callback = browser.authorize().replace("hmac=", "hmac=0")
    refused = browser.get(callback, headers={"Accept": "application/json"})
    assert refused.status_code == 401 and refused.json["error"]["code"] == "bad_hmac"
    assert nothing_stored(redis)


def test_a_replayed_state_is_refused(app_env, redis, shopify):
    browser = Browser(app_env)
    callback = browser.authorize()
    assert browser.get(callback).status_code == 302
    store_of(app_env, redis).delete(SHOP)
    replay = browser.get(callback)
    assert replay.status_code in (400, 403)
    assert nothing_stored(redis)


def test_a_state_replayed_with_its_cookie_is_refused(app_env, redis):
    browser = Browser(app_env)
    callback = browser.authorize()
    cookie = browser.client.get_cookie("connector_shopify_state", domain="connector.example", path="/shopify")
    assert cookie is not None
    assert browser.get(callback).status_code == 302
    store_of(app_env, redis).delete(SHOP)
    thief = Browser(app_env)
    thief.client.set_cookie("connector_shopify_state", cookie.value, domain="connector.example", path="/shopify")
    replay = thief.get(callback, headers={"Accept": "application/json"})
    assert replay.status_code == 400 and replay.json["error"]["code"] == "used_state"
    assert nothing_stored(redis)


def test_a_foreign_state_is_refused(app_env, redis):
    victim = Browser(app_env)
    attacker = Browser(app_env)
    callback = attacker.authorize()  # the attacker's own authorization, sent to the victim
    victim.authorize()  # the victim has a state cookie of its own
    refused = victim.get(callback, headers={"Accept": "application/json"})
    assert refused.status_code == 403 and refused.json["error"]["code"] == "foreign_state"
    assert Browser(app_env).get(callback).status_code == 403  # no cookie at all
    assert nothing_stored(redis)


@pytest.mark.parametrize("shop", ["lighthouse.example.com", "-cafe.myshopify.com", "cafe.myshopify.com.evil.example"])
def test_a_bad_shop_is_refused(app_env, redis, shop):
    params = {"shop": shop, "timestamp": str(int(time.time()))}
    response = Browser(app_env).get(f"/shopify/install?{oauth.signed_query(params, SECRET)}")
    assert response.status_code == 400 and "myshopify.com" in response.get_data(as_text=True)
    assert nothing_stored(redis)


def test_a_missing_scope_is_refused(app_env, redis, sandbox, shopify):
    requests.post(f"{sandbox.url}/shopify/_sandbox/grant_scopes", json={"scopes": "read_orders"}, timeout=10)
    browser = Browser(app_env)
    refused = browser.install()
    assert refused.status_code == 403 and "read_customers" in refused.get_data(as_text=True)
    assert nothing_stored(redis)
    assert not shopify.state()["subscriptions"]


def test_write_orders_granted_for_read_orders_is_enough(app_env, redis, sandbox):
    scopes = "write_orders,read_customers"
    requests.post(f"{sandbox.url}/shopify/_sandbox/grant_scopes", json={"scopes": scopes}, timeout=10)
    assert Browser(app_env).install().headers["Location"] == PAGES
    assert store_of(app_env, redis).get(SHOP) is not None


def test_a_stale_timestamp_is_refused(app_env, redis):
    browser = Browser(app_env)
    stale = browser.get(install_link(PUBLIC, SECRET, SHOP, now=time.time() - 3600))
    assert stale.status_code == 400 and "too old" in stale.get_data(as_text=True)
    callback = browser.authorize()
    params = dict(parse_qsl(urlsplit(callback).query))
    params["timestamp"] = str(int(time.time()) - 3600)
    params.pop("hmac")
    refused = browser.get(f"/shopify/callback?{oauth.signed_query(params, SECRET)}")
    assert refused.status_code == 400
    assert nothing_stored(redis)


def test_the_pages_need_the_session_of_that_shop(app_env, redis, sandbox):
    browser = Browser(app_env)
    browser.install()
    stranger = Browser(app_env)
    assert stranger.get(f"{PAGES}loyalty").status_code == 401
    refused = stranger.post(f"{PAGES}loyalty", data={"platform": "glu", "glu.base_url": "https://glu.example"})
    assert refused.status_code == 403  # no page of this shop gave the stranger a form (CSRF)
    assert browser.get("/app/other-shop/loyalty").status_code == 403
    no_csrf = browser.post(f"{PAGES}loyalty", data={"platform": "glu", "glu.base_url": "https://glu.example"})
    assert no_csrf.status_code == 403
    bad = browser.post(f"{PAGES}loyalty", data={"csrf_token": browser.csrf(), "platform": "voucherify"})
    assert bad.status_code == 400 and "app_id" in bad.get_data(as_text=True)
    assert stored_loyalty(redis) is None and store_of(app_env, redis).loyalty_table(SHOP) is None


def test_the_sandbox_refuses_a_wrong_client_and_a_foreign_redirect(app_env, sandbox):
    base = f"{sandbox.url}/shopify/{SHOP}/admin/oauth"
    good = {"client_id": KEYS["shopify_api_key"], "scope": "read_orders", "state": "s"}
    wrong_client = {**good, "client_id": "another-app", "redirect_uri": f"{PUBLIC}/shopify/callback"}
    assert requests.get(f"{base}/authorize", params=wrong_client, allow_redirects=False, timeout=10).status_code == 400
    foreign = {**good, "redirect_uri": "https://evil.example/shopify/callback"}
    assert requests.get(f"{base}/authorize", params=foreign, allow_redirects=False, timeout=10).status_code == 400
    wrong_secret = {"client_id": KEYS["shopify_api_key"], "client_secret": "nope", "code": "x"}
    assert requests.post(f"{base}/access_token", json=wrong_secret, timeout=10).status_code == 400


def test_the_demo_install_link_of_connector_run_opens_the_authorization(app_env, sandbox):
    from connector.cli import shopify_demo_env, shopify_install_link

    demo: dict[str, str] = {}
    shopify_demo_env(demo, "http://127.0.0.1:8000", sandbox.url)
    assert demo["SHOPIFY_API_SECRET"] == SECRET and demo["CONNECTOR_SECRET_KEY"]
    assert demo["CONNECTOR_SHOPIFY_ADMIN_URL"] == f"{sandbox.url}/shopify/{{shop}}"
    link = shopify_install_link({**demo, "CONNECTOR_PUBLIC_URL": PUBLIC})
    assert link is not None and link.startswith(f"{PUBLIC}/shopify/install?")
    opened = Browser(app_env).get(link)
    assert opened.status_code == 302
    assert opened.headers["Location"].startswith(
        f"{sandbox.url}/shopify/demo-app-shop.myshopify.com/admin/oauth/authorize?"
    )
    assert shopify_install_link({}) is None


def test_a_shop_of_the_tenants_file_is_told_its_platform_comes_from_there(app_env, redis):
    browser = Browser(app_env)
    assert browser.install("harbour-hotels.myshopify.com").status_code == 302
    installation = store_of(app_env, redis).get("harbour-hotels.myshopify.com")
    assert installation is not None and installation.tenant == "harbour"
    page = browser.get("/app/harbour/loyalty").get_data(as_text=True)
    assert "configured in the operator's tenants file" in page and "Activities are sent to <strong>glu</strong>" in page
    form = {
        "csrf_token": browser.csrf("/app/harbour/loyalty"),
        "platform": "glu",
        "glu.base_url": "https://glu.example",
    }
    assert browser.post("/app/harbour/loyalty", data=form).status_code == 403
    assert stored_loyalty(redis, "harbour") is None


def test_the_sandbox_exchanges_a_code_once(app_env, sandbox):
    browser = Browser(app_env)
    code = dict(parse_qsl(urlsplit(browser.authorize()).query))["code"]
    url = f"{sandbox.url}/shopify/{SHOP}/admin/oauth/access_token"
    body = {"client_id": KEYS["shopify_api_key"], "client_secret": SECRET, "code": code}
    first = requests.post(url, json=body, timeout=10)
    assert first.status_code == 200 and first.json()["scope"] == "read_customers,read_orders"
    assert requests.post(url, json=body, timeout=10).status_code == 400
