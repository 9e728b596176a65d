"""The merchant pages' sign-in rules, with the Flask test client: cookies (signed, HttpOnly,
SameSite=Lax, Secure behind https, expiring), links (once, time-limited, not forged), support
staff (the admin password, throttled), CSRF on every POST, and the security headers."""

from __future__ import annotations

import re
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from connector.merchant_links import make_link_token
from connector.tenant_store import TenantStore
from connector.web import create_app

SECRET_KEY = "merchant-session-test-key-0123456789"
ADMIN_PASSWORD = "support-staff-password-for-tests"


@pytest.fixture
def app(env: Any, redis: Any) -> Any:
    settings = env(CONNECTOR_SECRET_KEY=SECRET_KEY, CONNECTOR_ADMIN_PASSWORD=ADMIN_PASSWORD)
    TenantStore.open(redis, SECRET_KEY).create("lagoon", {"timezone": "Europe/Lisbon"})
    TenantStore.open(redis, SECRET_KEY).create("reef", {"timezone": "UTC"})
    return create_app(settings)


def csrf(page: Any) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found, page.get_data(as_text=True)[:500]
    return found.group(1)


def sign_in(client: Any, tenant: str = "lagoon") -> Any:
    token = make_link_token(SECRET_KEY, tenant, 3600)
    page = client.get(f"/app/sign-in?token={token}")
    return client.post("/app/sign-in", data={"token": token, "csrf_token": csrf(page)})


def cookie_header(answer: Any, name: str) -> str:
    return next(h for h in answer.headers.get_all("Set-Cookie") if h.startswith(f"{name}="))


def test_a_link_opens_a_signed_httponly_lax_expiring_session(app):
    answer = sign_in(app.test_client())
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/app/lagoon/")
    cookie = cookie_header(answer, "connector_merchant")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=28800" in cookie
    assert "Path=/app" in cookie and "Secure" not in cookie  # plain http on 127.0.0.1


def test_the_cookie_is_secure_behind_https(env, redis):
    settings = env(CONNECTOR_SECRET_KEY=SECRET_KEY, CONNECTOR_PUBLIC_URL="https://connector.example")
    TenantStore.open(redis, SECRET_KEY).create("lagoon", {"timezone": "UTC"})
    answer = sign_in(create_app(settings).test_client())
    assert "; Secure" in cookie_header(answer, "connector_merchant")


def test_a_session_expires(app):
    class NineHoursAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return super().get_timestamp() - 9 * 3600

    old = URLSafeTimedSerializer(SECRET_KEY, salt="connector.merchant.session", signer=NineHoursAgo)
    client = app.test_client()
    client.set_cookie("connector_merchant", old.dumps({"t": "lagoon", "a": False, "sid": "x"}), path="/app")
    assert client.get("/app/lagoon/").status_code == 401


def test_a_forged_session_is_no_session(app):
    forged = URLSafeTimedSerializer("not-the-key", salt="connector.merchant.session").dumps(
        {"t": "lagoon", "a": True, "sid": "x"}
    )
    client = app.test_client()
    client.set_cookie("connector_merchant", forged, path="/app")
    assert client.get("/app/lagoon/").status_code == 401
    assert client.get("/app/").status_code == 401


def test_a_session_opens_its_own_tenant_only(app):
    client = app.test_client()
    sign_in(client, "lagoon")
    assert client.get("/app/lagoon/").status_code == 200
    refused = client.get("/app/reef/")
    assert refused.status_code == 403 and "another tenant" in refused.get_data(as_text=True)
    assert client.get("/app/reef/", headers={"Accept": "application/json"}).json["error"]["code"] == "other_tenant"
    assert client.get("/app/").status_code == 303  # a merchant's home is its own tenant


def test_a_link_is_spent_once(app):
    client = app.test_client()
    token = make_link_token(SECRET_KEY, "lagoon", 3600)
    page = client.get(f"/app/sign-in?token={token}")
    assert client.post("/app/sign-in", data={"token": token, "csrf_token": csrf(page)}).status_code == 303
    again = app.test_client()
    page = again.get(f"/app/sign-in?token={token}")  # the page itself does not spend it
    assert page.status_code == 200
    refused = again.post("/app/sign-in", data={"token": token, "csrf_token": csrf(page)})
    assert refused.status_code == 403 and "already used" in refused.get_data(as_text=True)


@pytest.mark.parametrize("token", ["", "garbage", make_link_token("another-key-0123456789", "lagoon", 3600)])
def test_a_bad_link_is_refused(app, token):
    answer = app.test_client().get(f"/app/sign-in?token={token}")
    assert answer.status_code == 403 and "not valid" in answer.get_data(as_text=True)


def test_a_link_to_a_removed_tenant_is_refused(app, redis):
    client = app.test_client()
    token = make_link_token(SECRET_KEY, "reef", 3600)
    page = client.get(f"/app/sign-in?token={token}")
    TenantStore.open(redis, SECRET_KEY).delete("reef")
    refused = client.post("/app/sign-in", data={"token": token, "csrf_token": csrf(page)})
    assert refused.status_code == 403 and "no tenant &#39;reef&#39;" in refused.get_data(as_text=True)


def test_every_post_needs_the_csrf_token_of_this_browser(app):
    client = app.test_client()
    sign_in(client)
    assert client.post("/app/sign-out").status_code == 403
    other = app.test_client()
    foreign = csrf(other.get("/app/admin"))  # a valid token, of another browser
    assert client.post("/app/sign-out", data={"csrf_token": foreign}).status_code == 403
    page = client.get("/app/lagoon/")
    assert client.post("/app/sign-out", data={"csrf_token": csrf(page)}).status_code == 200


def test_state_changes_are_post_only(app):
    client = app.test_client()
    sign_in(client)
    for path in ("/app/sign-out", "/app/tenants"):
        client.get(path, follow_redirects=True)
    assert client.get("/app/lagoon/").status_code == 200  # still signed in: a GET signs nobody out


def test_support_staff_sign_in_and_see_every_tenant(app):
    client = app.test_client()
    page = client.get("/app/admin")
    wrong = client.post("/app/admin", data={"password": "guess", "csrf_token": csrf(page)})
    assert wrong.status_code == 401 and "not the admin password" in wrong.get_data(as_text=True)
    right = client.post("/app/admin", data={"password": ADMIN_PASSWORD, "csrf_token": csrf(page)})
    assert right.status_code == 303
    listing = client.get("/app/").get_data(as_text=True)
    assert "lagoon" in listing and "reef" in listing and "harbour" in listing
    assert client.get("/app/reef/").status_code == 200


def test_wrong_admin_passwords_are_throttled(app):
    client = app.test_client()
    token = csrf(client.get("/app/admin"))
    statuses = [
        client.post("/app/admin", data={"password": "guess", "csrf_token": token}).status_code for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    # the right password is refused too while throttled
    assert client.post("/app/admin", data={"password": ADMIN_PASSWORD, "csrf_token": token}).status_code == 429


def test_support_staff_onboard_a_tenant(app, redis):
    client = app.test_client()
    token = csrf(client.get("/app/admin"))
    client.post("/app/admin", data={"password": ADMIN_PASSWORD, "csrf_token": token})
    token = csrf(client.get("/app/"))
    created = client.post("/app/tenants", data={"name": "atoll", "timezone": "Pacific/Fiji", "csrf_token": token})
    assert created.status_code == 303 and created.headers["Location"].endswith("/app/atoll/")
    assert client.get("/app/atoll/").status_code == 200
    for name, zone, status in (
        ("atoll", "UTC", 409),
        ("harbour", "UTC", 409),
        ("Bad Name", "UTC", 400),
        ("x", "Mars/Base", 400),
    ):
        answer = client.post("/app/tenants", data={"name": name, "timezone": zone, "csrf_token": token})
        assert answer.status_code == status, (name, answer.get_data(as_text=True))


def test_a_merchant_cannot_onboard_tenants(app):
    client = app.test_client()
    sign_in(client)
    token = csrf(client.get("/app/lagoon/"))
    assert client.post("/app/tenants", data={"name": "atoll", "csrf_token": token}).status_code == 403


def test_admin_sign_in_is_off_without_a_password(env, redis):
    settings = env(CONNECTOR_SECRET_KEY=SECRET_KEY)
    assert create_app(settings).test_client().get("/app/admin").status_code == 404


def test_the_pages_need_a_stable_secret_key(env, redis):
    answer = create_app(env()).test_client().get("/app/")
    assert answer.status_code == 404 and "CONNECTOR_SECRET_KEY" in answer.get_data(as_text=True)


def test_every_page_carries_the_security_headers(app):
    client = app.test_client()
    for path in ("/app/", "/app/admin", "/app/sign-in?token=x", "/app/lagoon/"):
        answer = client.get(path)
        csp = answer.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert answer.headers["Cache-Control"] == "no-store" and answer.headers["X-Frame-Options"] == "DENY"
        assert "<script>" not in answer.get_data(as_text=True)  # no inline script


def test_redis_down_is_a_503_page_not_a_500(env, redis):
    settings = env(CONNECTOR_SECRET_KEY=SECRET_KEY, REDIS_URL="redis://127.0.0.1:1/0")
    client = create_app(settings).test_client()  # starts: the key is checked once Redis answers
    token = make_link_token(SECRET_KEY, "lagoon", 3600)
    for path in (f"/app/sign-in?token={token}", "/app/admin", "/app/lagoon/"):
        answer = client.get(path)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "30", path
        assert "cannot reach its Redis" in answer.get_data(as_text=True)


def test_redis_down_a_webhook_to_a_stored_tenant_is_503_not_404(env, redis):
    settings = env(CONNECTOR_SECRET_KEY=SECRET_KEY, REDIS_URL="redis://127.0.0.1:1/0")
    client = create_app(settings).test_client()
    answer = client.post("/webhooks/lagoon/shopify", data=b"{}", headers={"Content-Type": "application/json"})
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
    assert answer.json["error"]["code"] == "queue_unavailable"
