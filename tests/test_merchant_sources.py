"""The Sources page: adding every source with its minimum fields (its URL then takes the sender
sandbox's signed webhooks), generated credentials, secrets never shown back, rotation with an
overlap window, removal (URL 404, queued job ignored), and the refusals. Flask's test client on
the real app and Redis; the browser test at the end drives Chromium through the whole flow."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from browser_support import SECRET_KEY, MerchantStack, screenshot
from conftest import FIXTURES, harbour_marina_toml
from markupsafe import escape
from playwright.sync_api import Page, expect
from redis import Redis
from test_source_contract import first_webhook

from connector.directory import RECHECK_SECONDS
from connector.merchant_links import make_link_token
from connector.queue import fetch_job
from connector.sandbox.sender import sender
from connector.sandbox.server import SandboxServer
from connector.settings import Settings
from connector.sources.registry import SOURCES
from connector.tenant_store import TenantStore
from connector.vendors.glu.sandbox import tenant_table as glu_table
from connector.vendors.mews.sandbox import KEYS as MEWS_KEYS
from connector.web import create_app
from connector.web.merchant.sources import ADDABLE, form_fields

TENANT = "lagoon"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Merchant:
    """A signed-in browser on the test client: GETs, and POSTs with the page's CSRF token."""

    def __init__(self, client: Any, tenant: str) -> None:
        self.client = client
        self.tenant = tenant
        token = make_link_token(SECRET_KEY, tenant, 3600)
        page = client.get(f"/app/sign-in?token={token}")
        assert page.status_code == 200, page.data
        answer = client.post("/app/sign-in", data={"token": token, "csrf_token": self.csrf(page.text)})
        assert answer.status_code == 303, answer.data

    @staticmethod
    def csrf(html: str) -> str:
        found = CSRF.search(html)
        assert found, "no CSRF token on the page"
        return found.group(1)

    def get(self, path: str) -> Any:
        return self.client.get(f"/app/{self.tenant}{path}")

    def post(self, path: str, data: dict[str, str] | None = None) -> Any:
        token = self.csrf(self.get("/sources").text)
        return self.client.post(f"/app/{self.tenant}{path}", data={**(data or {}), "csrf_token": token})


@pytest.fixture
def store(redis: Redis) -> TenantStore:
    return TenantStore.open(redis, SECRET_KEY)


@pytest.fixture
def app_settings(env: Callable[..., Settings]) -> Settings:
    return env(CONNECTOR_SECRET_KEY=SECRET_KEY, CONNECTOR_PUBLIC_URL="https://connector.example")


def glu_tenant(sandbox_url: str) -> dict[str, Any]:
    """A stored tenant's document on the Glu sandbox (so its webhooks are accepted, not ignored)."""
    return {"timezone": "Europe/London", "loyalty": glu_table(sandbox_url)}


@pytest.fixture
def merchant(app_settings: Settings, store: TenantStore, sandbox: SandboxServer) -> Iterator[Merchant]:
    store.create(TENANT, glu_tenant(sandbox.url))
    yield Merchant(create_app(app_settings).test_client(), TENANT)


def minimum_form(source: str, sandbox_url: str, seed: str = "lagoon") -> dict[str, str]:
    """The entered fields of ``source`` from its sandbox's table (the generated ones left out)."""
    table = sender(SOURCES[source].sandbox).source_table(seed, sandbox_url)
    entered = {f.name for f in form_fields(source)}
    form = {"source": source}
    for key, value in table.items():
        if key in entered:
            form[f"sources.{source}.{key}"] = "\n".join(value) if isinstance(value, list) else str(value)
    return form


def stored_table(store: TenantStore, source: str, tenant: str = TENANT) -> dict[str, Any]:
    record = store.get(tenant)
    assert record is not None
    table: dict[str, Any] = record.document["sources"][source]
    return table


def secret_values(source: str, table: dict[str, Any]) -> list[str]:
    """Every secret value of a stored table but the URL token (which the URL shows)."""
    model = SOURCES[source].config_model
    secret_names = {f.name for f in form_fields(source) if f.secret} | {
        k for k in model.generated if k != model.path_credential and k in table and k != "username"
    }
    values: list[str] = []
    for name in secret_names:
        value = table.get(name)
        values.extend(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str) and v)
    return values


def url_on(html: str, title: str) -> str:
    found = re.search(rf'value="([^"]+)" aria-label="Webhook URL of {re.escape(title)}"', html)
    assert found, f"no webhook URL of {title} on the page"
    return found.group(1)


def post_signed(client: Any, source: str, url: str, table: dict[str, Any], n: int = 1) -> Any:
    """The source's first webhook, signed by its sandbox for ``table``, posted to ``url``."""
    request = sender(SOURCES[source].sandbox).sign(first_webhook(source), table, n)
    path = url.removeprefix("https://connector.example")
    expected = request.path(TENANT, source)
    assert path == expected, (path, expected)  # the page's URL is the one the vendor's sandbox calls
    return client.post(path, data=request.body, headers=request.headers)


# ---------------------------------------------------------------- adding each source


@pytest.mark.parametrize("source", ADDABLE)
def test_every_listed_source_is_added_with_its_minimum_fields_and_its_url_takes_signed_webhooks(
    merchant: Merchant, store: TenantStore, sandbox: SandboxServer, source: str
) -> None:
    added = merchant.post("/sources", minimum_form(source, sandbox.url))
    assert added.status_code == 200, added.text
    table = stored_table(store, source)
    title = SOURCES[source].setup.title  # type: ignore[union-attr]
    page = merchant.get(f"/sources/{source}").text
    url = url_on(page, title)
    assert url == url_on(merchant.get("/sources").text, title)
    answer = post_signed(merchant.client, source, url, table)
    assert 200 <= answer.status_code < 300, (answer.status_code, answer.data)
    # the steps are on the page, and no secret but the URL token is, on any later page
    for step in SOURCES[source].setup.steps:  # type: ignore[union-attr]
        assert str(escape(step)) in page
    for value in secret_values(source, table):
        for html in (page, merchant.get("/sources").text):
            assert value not in html


@pytest.mark.parametrize("source", [s for s in ADDABLE if SOURCES[s].config_model.generated])
def test_generated_credentials_are_long_random_strings_shown_once(
    merchant: Merchant, store: TenantStore, sandbox: SandboxServer, source: str
) -> None:
    model = SOURCES[source].config_model
    added = merchant.post("/sources", minimum_form(source, sandbox.url)).text
    first = stored_table(store, source)
    assert merchant.post(f"/sources/{source}/remove").status_code == 303
    merchant.post("/sources", minimum_form(source, sandbox.url))
    second = stored_table(store, source)
    for key in model.generated:
        values = [first[key], second[key]]
        assert values[0] != values[1]
        for value in values:
            text = value[0] if isinstance(value, list) else value
            if key != "username":
                assert len(text) >= 40 and re.fullmatch(r"[A-Za-z0-9_-]+", text), text
        secret = key != model.path_credential and key != "username"
        if secret:  # shown on the answer that made it, never on a later page
            assert (first[key][0] if isinstance(first[key], list) else first[key]) in added
            assert "Shown once" in added
    later = merchant.get(f"/sources/{source}").text
    for value in secret_values(source, second):
        assert value not in later


def test_entered_secrets_are_never_shown_back_only_their_last_characters(
    merchant: Merchant, store: TenantStore, sandbox: SandboxServer
) -> None:
    answer = merchant.post("/sources", minimum_form("mews", sandbox.url)).text
    for value in (MEWS_KEYS["mews_client_token"], MEWS_KEYS["mews_access_token"]):
        assert value not in answer
    page = merchant.get("/sources/mews").text
    assert MEWS_KEYS["mews_access_token"] not in page
    assert "ends in …oken" in page  # the last four characters of sandbox-mews-access-token
    # saving the form with the secrets left empty keeps them
    form = {k: v for k, v in minimum_form("mews", sandbox.url).items() if not k.endswith("_token")}
    form["sources.mews.enterprise_id"] = "ent-lagoon"
    assert merchant.post("/sources/mews", form).status_code == 303
    table = stored_table(store, "mews")
    assert table["access_token"] == MEWS_KEYS["mews_access_token"] and table["enterprise_id"] == "ent-lagoon"
    assert len(table["token"]) >= 40  # the generated URL token is kept too


def test_unknown_and_app_installed_sources_are_400(merchant: Merchant) -> None:
    for slug in ("bogus", "shopify", "", "mews/../x", "x" * 5000):
        assert merchant.post("/sources", {"source": slug}).status_code == 400
        assert merchant.get(f"/sources/new?source={slug}").status_code == 400
    assert merchant.get("/sources/bogus").status_code == 404
    assert merchant.post("/sources/bogus/rotate").status_code == 404


def test_a_source_cannot_be_added_twice_and_bad_fields_are_named(merchant: Merchant, sandbox: SandboxServer) -> None:
    assert merchant.post("/sources", minimum_form("standard", sandbox.url)).status_code == 200
    again = merchant.post("/sources", minimum_form("standard", sandbox.url))
    assert again.status_code == 409 and "already has a standard source" in again.text
    bad = merchant.post("/sources", {"source": "hotspotsystem"})
    assert bad.status_code == 400 and "secrets" in bad.text
    wrong = merchant.post("/sources", {"source": "meraki", "sources.meraki.validator": ""})
    assert wrong.status_code == 400 and "validator" in wrong.text


def test_a_mews_enterprise_another_tenant_claims_is_refused(
    app_settings: Settings, store: TenantStore, sandbox: SandboxServer
) -> None:
    for name in ("reef", TENANT):
        store.create(name, glu_tenant(sandbox.url))
    app = create_app(app_settings)
    form = {**minimum_form("mews", sandbox.url), "sources.mews.enterprise_id": "ent-shared"}
    assert Merchant(app.test_client(), "reef").post("/sources", form).status_code == 200
    refused = Merchant(app.test_client(), TENANT).post("/sources", form)
    assert refused.status_code == 400
    assert "ent-shared" in refused.text and "reef" in refused.text
    assert "mews" not in (store.get(TENANT).document.get("sources") or {})  # type: ignore[union-attr]


SHARED_MEWS_TOKEN = "operator-shared-mews-token-0123456789abcdef"


def test_the_shared_mews_url_is_shown_to_support_staff_only(
    env: Callable[..., Settings], store: TenantStore, sandbox: SandboxServer
) -> None:
    settings = env(
        CONNECTOR_SECRET_KEY=SECRET_KEY,
        CONNECTOR_PUBLIC_URL="https://connector.example",
        CONNECTOR_MEWS_WEBHOOK_TOKEN=SHARED_MEWS_TOKEN,
        CONNECTOR_ADMIN_PASSWORD="support-staff-password-42",
    )
    store.create(TENANT, glu_tenant(sandbox.url))
    app = create_app(settings)
    merchant = Merchant(app.test_client(), TENANT)
    form = {**minimum_form("mews", sandbox.url), "sources.mews.enterprise_id": "ent-lagoon"}
    assert merchant.post("/sources", form).status_code == 200
    page = merchant.get("/sources/mews").text
    # the connector-wide token would let one tenant post as another enterprise: never a merchant's
    assert SHARED_MEWS_TOKEN not in page and "ent-lagoon" in page
    staff = app.test_client()
    login = staff.get("/app/admin")
    signed = staff.post(
        "/app/admin", data={"password": "support-staff-password-42", "csrf_token": Merchant.csrf(login.text)}
    )
    assert signed.status_code == 303
    seen = staff.get(f"/app/{TENANT}/sources/mews").text
    assert f'value="https://connector.example/webhooks/_mews/{SHARED_MEWS_TOKEN}"' in seen


# ---------------------------------------------------------------- rotation


def test_rotating_a_url_token_accepts_both_until_finished(
    merchant: Merchant, store: TenantStore, sandbox: SandboxServer
) -> None:
    merchant.post("/sources", minimum_form("purple", sandbox.url))
    old = stored_table(store, "purple")
    rotated = merchant.post("/sources/purple/rotate")
    assert rotated.status_code == 200 and "Finish rotation" in rotated.text
    new = stored_table(store, "purple")
    assert new["previous"] == {"token": old["token"]} and new["token"] != old["token"]
    page = merchant.get("/sources/purple").text
    assert url_on(page, "Purple").endswith(new["token"]) and old["token"] in page  # the URL being rotated out
    for table, n in ((old, 1), (new, 2)):
        answer = post_signed(merchant.client, "purple", f"/webhooks/{TENANT}/purple/{table['token']}", table, n)
        assert answer.status_code in (200, 202), answer.data
    again = merchant.post("/sources/purple/rotate")
    assert again.status_code == 409 and "finish it first" in again.text
    record = store.get(TENANT)
    assert record is not None and "sources.purple.previous.token" in record.secrets
    assert merchant.post("/sources/purple/rotate/finish").status_code == 303
    record = store.get(TENANT)
    assert record is not None and "sources.purple.previous.token" not in record.secrets
    assert "previous" not in stored_table(store, "purple")
    gone = post_signed(merchant.client, "purple", f"/webhooks/{TENANT}/purple/{old['token']}", old, 3)
    assert gone.status_code == 401
    assert merchant.post("/sources/purple/rotate/finish").status_code == 409


def test_rotating_a_vendor_issued_secret_takes_the_new_one_from_the_form(
    merchant: Merchant, store: TenantStore, sandbox: SandboxServer
) -> None:
    merchant.post("/sources", minimum_form("standard", sandbox.url, "first"))
    old = stored_table(store, "standard")
    empty = merchant.post("/sources/standard/rotate")
    assert empty.status_code == 400 and "enter the new" in empty.text
    new_secret = sender(SOURCES["standard"].sandbox).source_table("second", sandbox.url)["secrets"][0]
    rotated = merchant.post("/sources/standard/rotate", {"sources.standard.rotate.secrets": new_secret})
    assert rotated.status_code == 200 and new_secret not in rotated.text
    new = stored_table(store, "standard")
    assert new["secrets"] == [new_secret] and new["previous"] == {"secrets": old["secrets"]}
    for table, n in ((old, 1), (new, 2)):
        answer = post_signed(merchant.client, "standard", f"/webhooks/{TENANT}/standard", table, n)
        assert answer.status_code in (200, 202), answer.data
    merchant.post("/sources/standard/rotate/finish")
    assert post_signed(merchant.client, "standard", f"/webhooks/{TENANT}/standard", old, 3).status_code == 401


# ---------------------------------------------------------------- removal


def test_removing_a_source_makes_its_url_404_and_its_queued_job_end_ignored(
    merchant: Merchant, store: TenantStore, sandbox: SandboxServer, redis: Redis, work: Callable[..., None]
) -> None:
    merchant.post("/sources", minimum_form("hotspotsystem", sandbox.url))
    table = stored_table(store, "hotspotsystem")
    accepted = post_signed(merchant.client, "hotspotsystem", f"/webhooks/{TENANT}/hotspotsystem", table)
    assert accepted.status_code == 202, accepted.data
    page = merchant.get("/sources/hotspotsystem").text
    assert "end <em>ignored</em>" in page  # the Remove button says what becomes of queued webhooks
    removed = merchant.post("/sources/hotspotsystem/remove")
    assert removed.status_code == 303 and "done=removed" in removed.headers["Location"]
    assert "hotspotsystem" not in store.get(TENANT).document["sources"]  # type: ignore[union-attr]
    again = post_signed(merchant.client, "hotspotsystem", f"/webhooks/{TENANT}/hotspotsystem", table, 2)
    assert again.status_code == 404
    work()
    job = fetch_job(redis, accepted.json["job"])
    result = job.return_value()
    assert result["status"] == "ignored" and "hotspotsystem" in result["reason"], result
    assert "Removed." in merchant.get("/sources?done=removed").text


# ---------------------------------------------------------------- tenants-file tenants

PURPLE_FILE_TOKEN = "harbour-purple-url-token-0123456789abcdefghij"
MIST_FILE_SECRET = "harbour-mist-signing-secret-never-shown"


@pytest.fixture
def file_merchant(env: Callable[..., Settings], sandbox: SandboxServer) -> Merchant:
    harbour = f"""
        [tenants.harbour.sources.purple]
        token = "{PURPLE_FILE_TOKEN}"
        [tenants.harbour.sources.mist]
        secrets = ["{MIST_FILE_SECRET}"]
    """
    settings = env(
        harbour_marina_toml(sandbox.url, harbour, ""),
        CONNECTOR_SECRET_KEY=SECRET_KEY,
        CONNECTOR_PUBLIC_URL="https://connector.example",
    )
    return Merchant(create_app(settings).test_client(), "harbour")


def test_a_file_tenant_sees_its_urls_with_tokens_never_a_secret_and_cannot_change_them(
    file_merchant: Merchant, sandbox: SandboxServer
) -> None:
    page = file_merchant.get("/sources").text
    assert url_on(page, "Purple") == f"https://connector.example/webhooks/harbour/purple/{PURPLE_FILE_TOKEN}"
    assert url_on(page, "Juniper Mist") == "https://connector.example/webhooks/harbour/mist"
    detail = file_merchant.get("/sources/mist").text
    for html in (page, detail):
        assert MIST_FILE_SECRET not in html and '<form method="post" action="/app/harbour/sources' not in html
    assert "Add a source" not in page
    assert file_merchant.get("/sources/new?source=standard").status_code == 403
    for path, data in (
        ("/sources", minimum_form("standard", sandbox.url)),
        ("/sources/mist/rotate", {}),
        ("/sources/mist/remove", {}),
        ("/sources/purple", {}),
    ):
        refused = file_merchant.post(path, data)
        assert refused.status_code == 403 and "tenants file" in refused.text, (path, refused.status_code)


# ---------------------------------------------------------------- the browser


def test_add_mews_copy_its_url_send_a_webhook_and_rotate_its_token(merchant_stack: MerchantStack, page: Page) -> None:
    TenantStore.open(merchant_stack.redis, SECRET_KEY).create(TENANT, glu_tenant(merchant_stack.sandbox.url))
    merchant_stack.sign_in(page, TENANT)
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Sources").click()
    page.get_by_label("Source").select_option("mews")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Client token").fill(MEWS_KEYS["mews_client_token"])
    page.get_by_label("Access token").fill(MEWS_KEYS["mews_access_token"])
    page.get_by_text("More settings").click()
    page.get_by_label("Api url").fill(merchant_stack.sandbox.url + "/mews")
    page.get_by_role("button", name="Add Mews").click()
    expect(page.get_by_role("status")).to_contain_text("Mews added")

    url_field = page.get_by_role("textbox", name="Webhook URL of Mews", exact=True)
    old_url = url_field.input_value()
    assert re.fullmatch(rf"{re.escape(merchant_stack.url)}/webhooks/{TENANT}/mews/[A-Za-z0-9_-]{{43}}", old_url)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=merchant_stack.url)
    page.get_by_role("button", name="Copy Webhook URL of Mews").click()
    expect(page.get_by_role("button", name="Copy Webhook URL of Mews")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == old_url
    expect(page.get_by_role("heading", name=re.compile("In Mews Operations"))).to_be_visible()
    screenshot(page, "sources")

    body = (FIXTURES / "mews" / "general_webhook.json").read_bytes()

    def answers(url: str) -> int:
        sent = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=5)
        return sent.status_code

    def settled() -> None:
        """Every gunicorn worker serves a change within RECHECK_SECONDS (the store's version key)."""
        time.sleep(RECHECK_SECONDS + 0.2)

    settled()
    assert [answers(old_url) for _ in range(3)] == [202] * 3

    page.get_by_role("button", name="Rotate").click()
    expect(page.get_by_role("status").first).to_contain_text("Rotation started")
    new_url = page.get_by_role("textbox", name="Webhook URL of Mews", exact=True).input_value()
    assert new_url != old_url
    expect(page.get_by_role("textbox", name="Previous webhook URL of Mews")).to_have_value(old_url)
    settled()
    assert [answers(url) for url in (new_url, old_url) * 2] == [202] * 4  # both, until finished
    page.get_by_role("button", name="Finish rotation").click()
    expect(page.get_by_role("status").first).to_contain_text("Rotation finished")
    settled()
    assert [answers(url) for url in (old_url, new_url) * 2] == [401, 202] * 2
