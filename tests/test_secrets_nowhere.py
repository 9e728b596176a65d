"""No configured secret, token or password ever lands in Redis, a log or a page, in any encoding.

Every source receives a signed webhook; every destination (Glu, LoyaltyLion, Voucherify, the six
ESPs, the three PMS API clients) answers every call with an error that echoes the request
(headers, body, query: the sandboxes' ``echo`` fault), first retriable, then fatal. A real worker
process runs everything into the failed registry; then every Redis key and value (all types,
zlib-compressed job data decompressed), the worker's and the web app's logs, and the dashboard's
job pages are scanned for every configured secret: raw, percent-encoded (``quote`` and
``quote_plus``), base64 (also of ``user:secret`` basic-auth pairs) and JSON-escaped.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest
from conftest import load_fixture, shopify_headers, standard_webhook_headers
from stack_helpers import ROOT, gunicorn_server, redis_texts

from connector.embedded_redis import free_port
from connector.esps.registry import ESPS as ESP_REGISTRY
from connector.queue import CHECK_QUEUE, QUEUE_NAMES, get_queue
from connector.sandbox.server import DEFAULT_KEYS, SandboxServer
from connector.web import create_app

# Characters that every encoding changes: / + = & % ? # " \ and a space.
SPECIAL = '/+= &%?#"\\'
PATH_SAFE = "+=&~!$"  # a URL path segment (the path tokens): no / ? # % or space


def secret(name: str, chars: str = SPECIAL) -> str:
    """A distinctive secret with characters that every encoding changes."""
    return f"{name}-Zq9{chars}k7"


SANDBOX_KEYS = {
    "glu": secret("glu-key"),
    "mews_client_token": secret("mews-client"),
    "mews_access_token": secret("mews-access"),
    "apaleo_client_id": "apaleo-client",
    "apaleo_client_secret": secret("apaleo-client-secret"),
    "cloudbeds": secret("cloudbeds-key"),
    "klaviyo": secret("klaviyo-key"),
    "mailchimp": secret("mailchimp-key"),
    "braze": secret("braze-key"),
    "customerio": secret("customerio-key"),
    "activecampaign": secret("activecampaign-key"),
    "intercom": secret("intercom-token"),
    "loyaltylion": secret("loyaltylion-key"),
    "voucherify_app_id": "voucherify-app",
    "voucherify_app_token": secret("voucherify-token"),
}
SOURCE_SECRETS = {
    "shopify": secret("shopify-secret"),
    "standard": "whsec_" + base64.b64encode(b"standard/secret+for=harbour?32b").decode(),
    "purple": secret("purple-token", PATH_SAFE),
    "meraki": secret("meraki-secret"),
    "socialwifi": "Bearer " + secret("socialwifi-token"),
    "mist": secret("mist-secret"),
    "hotspotsystem": secret("hotspot-key"),
    "mews": secret("mews-url-token", PATH_SAFE),
    "apaleo": secret("apaleo-url-token", PATH_SAFE),
    "apaleo_password": secret("apaleo-basic-password"),
    "cloudbeds": secret("cloudbeds-url-token", PATH_SAFE),
    "hostaway": secret("hostaway-password"),
    "voucherify": secret("voucherify-webhook"),
    "loyaltylion": secret("loyaltylion-webhook"),
}
ESPS = tuple(ESP_REGISTRY)  # every registered ESP
ADMIN_PASSWORD = secret("admin-password")
SECRET_KEY = secret("flask-secret-key")
BASIC_USERS = ("connector", "sandbox-site", "apaleo-client", "apaleo-harbour", "hostaway-harbour", "", "admin")


@functools.cache
def forms(value: str) -> frozenset[str]:
    """Every encoding of ``value`` the scan looks for (written independently of the connector)."""
    found = {value, quote(value, safe=""), quote(value), quote_plus(value, safe=""), quote_plus(value)}
    found |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), form) for form in list(found)}
    found.add(base64.b64encode(value.encode()).decode().rstrip("="))
    found.add(base64.urlsafe_b64encode(value.encode()).decode().rstrip("="))
    for user in BASIC_USERS:
        found.add(base64.b64encode(f"{user}:{value}".encode()).decode().rstrip("="))
    found |= {json.dumps(form)[1:-1] for form in list(found)}
    found |= {form.replace("/", "\\/") for form in list(found)}
    return frozenset(found)


def all_secrets() -> list[str]:
    return [*SANDBOX_KEYS.values(), *SOURCE_SECRETS.values(), ADMIN_PASSWORD, SECRET_KEY]


def hits(text: str) -> list[str]:
    """Which secrets appear in ``text``, in which form."""
    found = []
    for value in all_secrets():
        if value in ("apaleo-client", "voucherify-app"):  # identifiers, not secrets
            continue
        found += [f"{value!r} as {form!r}" for form in forms(value) if form in text]
    return found


def t(value: str) -> str:
    """A TOML string."""
    return json.dumps(value)


def tenants_toml(url: str) -> str:
    s = SOURCE_SECRETS
    k = SANDBOX_KEYS
    glu = f'[tenants.{{name}}.loyalty]\nplatform = "glu"\nbase_url = "{url}/glu"\napi_key = {t(k["glu"])}\n'
    text = '[tenants.harbour]\ntimezone = "Europe/London"\n' + glu.format(name="harbour")
    text += f"""
[tenants.harbour.sources.shopify]
shop_domain = "harbour-hotels.myshopify.com"
secrets = [{t(s["shopify"])}]
[tenants.harbour.sources.standard]
secrets = [{t(s["standard"])}]
[tenants.harbour.sources.purple]
token = {t(s["purple"])}
[tenants.harbour.sources.meraki]
validator = "da6a17c407bb11dfeec7392a5042be0a4cc034b6"
secret = {t(s["meraki"])}
[tenants.harbour.sources.socialwifi]
authorization = {t(s["socialwifi"])}
[tenants.harbour.sources.mist]
secrets = [{t(s["mist"])}]
[tenants.harbour.sources.hotspotsystem]
secrets = [{t(s["hotspotsystem"])}]
venue = "harbour-garden"
[tenants.harbour.sources.mews]
token = {t(s["mews"])}
api_url = "{url}/mews"
client_token = {t(k["mews_client_token"])}
access_token = {t(k["mews_access_token"])}
enterprise_id = "851df8c8-90f2-4c4a-8e01-a4fc46b25178"
[tenants.harbour.sources.apaleo]
token = {t(s["apaleo"])}
username = "apaleo-harbour"
password = {t(s["apaleo_password"])}
client_id = "apaleo-client"
client_secret = {t(k["apaleo_client_secret"])}
api_url = "{url}/apaleo"
identity_url = "{url}/apaleo"
account_id = "HARB"
[tenants.harbour.sources.cloudbeds]
token = {t(s["cloudbeds"])}
api_url = "{url}/cloudbeds"
api_key = {t(k["cloudbeds"])}
property_id = "318267"
currency = "GBP"
[tenants.harbour.sources.hostaway]
username = "hostaway-harbour"
password = {t(s["hostaway"])}
account_id = 10452
"""
    text += f"""
[tenants.lion]
[tenants.lion.loyalty]
platform = "loyaltylion"
base_url = "{url}/loyaltylion"
api_key = {t(k["loyaltylion"])}
[tenants.lion.sources.purple]
token = {t(s["purple"] + "-lion")}
[tenants.vouch]
[tenants.vouch.loyalty]
platform = "voucherify"
base_url = "{url}/voucherify"
app_id = "voucherify-app"
app_token = {t(k["voucherify_app_token"])}
[tenants.vouch.sources.purple]
token = {t(s["purple"] + "-vouch")}
"""
    esp_keys = {
        "klaviyo": f"api_key = {t(k['klaviyo'])}",
        "mailchimp": f'api_key = {t(k["mailchimp"])}\nlist_id = "sandbox-list"',
        "braze": f"api_key = {t(k['braze'])}",
        "customerio": f'site_id = "sandbox-site"\napi_key = {t(k["customerio"])}',
        "activecampaign": f'account_id = "sandbox-actid"\nevent_key = {t(k["activecampaign"])}',
        "intercom": f"access_token = {t(k['intercom'])}",
    }
    for esp in ESPS:
        text += "\n" + glu.format(name=esp)
        text += f"[tenants.{esp}.sources.voucherify]\nsecrets = [{t(s['voucherify'])}]\n"
        text += f"[tenants.{esp}.sources.loyaltylion]\nsecrets = [{t(s['loyaltylion'])}]\n"
        text += f'[tenants.{esp}.esp]\nprovider = "{esp}"\nbase_url = "{url}/{esp}"\n{esp_keys[esp]}\n'
    return text


def hex_hmac(body: bytes, key: str) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def b64_hmac(body: bytes, key: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


JSON = {"Content-Type": "application/json"}


def webhooks() -> Iterator[tuple[str, bytes, dict[str, str]]]:
    """(path, body, headers) of one signed webhook per source and tenant."""
    s = SOURCE_SECRETS
    body = load_fixture("shopify", "orders_paid")
    yield "/webhooks/harbour/shopify", body, shopify_headers(body, secret=s["shopify"])
    body = load_fixture("standard", "wifi_login")
    yield "/webhooks/harbour/standard", body, standard_webhook_headers(body, "msg_secret_1", (s["standard"],))
    body = load_fixture("purple", "login")
    for tenant, suffix in (("harbour", ""), ("lion", "-lion"), ("vouch", "-vouch")):
        yield f"/webhooks/{tenant}/purple/{quote(s['purple'] + suffix, safe=PATH_SAFE)}", body, JSON
    meraki = json.loads(load_fixture("meraki", "observations"))
    meraki["secret"] = s["meraki"]
    yield "/webhooks/harbour/meraki", json.dumps(meraki, indent=2).encode(), JSON
    yield (
        "/webhooks/harbour/socialwifi",
        load_fixture("socialwifi", "upsert"),
        {**JSON, "Authorization": s["socialwifi"]},
    )
    body = load_fixture("mist", "guest_authorizations")
    yield "/webhooks/harbour/mist", body, {**JSON, "X-Mist-Signature-v2": hex_hmac(body, s["mist"])}
    body = load_fixture("hotspotsystem", "customer_create")
    yield (
        "/webhooks/harbour/hotspotsystem",
        body,
        {**JSON, "X-HotspotSystem-Hmac-Sha256": b64_hmac(body, s["hotspotsystem"])},
    )
    yield f"/webhooks/harbour/mews/{quote(s['mews'], safe=PATH_SAFE)}", load_fixture("mews", "general_webhook"), JSON
    yield (
        f"/webhooks/harbour/apaleo/{quote(s['apaleo'], safe=PATH_SAFE)}",
        load_fixture("apaleo", "reservation_created"),
        JSON,
    )
    yield (
        f"/webhooks/harbour/cloudbeds/{quote(s['cloudbeds'], safe=PATH_SAFE)}",
        load_fixture("cloudbeds", "reservation_created"),
        JSON,
    )
    yield (
        "/webhooks/harbour/hostaway",
        load_fixture("hostaway", "reservation_created"),
        {**JSON, "Authorization": basic("hostaway-harbour", s["hostaway"])},
    )
    for esp in ESPS:
        body = load_fixture("voucherify", "customer_loyalty_tier_upgraded_v2024")
        yield f"/webhooks/{esp}/voucherify", body, {**JSON, "x-voucherify-signature": hex_hmac(body, s["voucherify"])}
        body = load_fixture("loyaltylion", "customer_tier_upgraded")
        topic = json.loads(body)["topic"]
        headers = {
            **JSON,
            "x-loyaltylion-hmac-sha256": b64_hmac(body, s["loyaltylion"]),
            "x-loyaltylion-topic": topic,
        }
        yield f"/webhooks/{esp}/loyaltylion", body, headers


@pytest.fixture
def echo_sandbox() -> Iterator[SandboxServer]:
    server = SandboxServer(keys=SANDBOX_KEYS).start()
    yield server
    server.stop()


def test_no_secret_in_redis_logs_or_pages_when_every_destination_echoes(
    monkeypatch, tmp_path, redis, redis_url, echo_sandbox, caplog
):
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(tenants_toml(echo_sandbox.url))
    for name, value in {
        "REDIS_URL": redis_url,
        "CONNECTOR_TENANTS_FILE": str(tenants),
        "CONNECTOR_RETRY_SCHEDULE": "0",
        "CONNECTOR_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "CONNECTOR_SECRET_KEY": SECRET_KEY,
        "CONNECTOR_HTTP_TIMEOUT": "5",
    }.items():
        monkeypatch.setenv(name, value)
    # Every vendor call: first a retriable echo (logged as a retry), then fatal echoes.
    for vendor in echo_sandbox.sandboxes.extra.values():
        vendor.faults.arm({"mode": "echo", "status": 503, "count": 1})
        vendor.faults.arm({"mode": "echo", "status": 400, "count": 10_000})
    echo_sandbox.sandboxes.glu.faults.arm({"mode": "echo", "status": 503, "count": 1})
    echo_sandbox.sandboxes.glu.faults.arm({"mode": "echo", "status": 400, "count": 10_000})

    caplog.set_level(logging.DEBUG)
    client = create_app().test_client()
    answers = {}
    for path, body, headers in webhooks():
        response = client.post(path, data=body, headers=headers)
        answers[path] = response.status_code
        assert response.status_code in (200, 202), (path, response.get_data(as_text=True))
    accepted = sum(1 for status in answers.values() if status == 202)
    assert accepted >= 20

    log = tmp_path / "worker.log"
    with log.open("w") as out:
        subprocess.run(
            # The in-process worker class: the same failure and log redaction, a fraction of the time.
            [sys.executable, "-m", "connector.cli", "worker", "--burst", "--worker-class", "simple"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
            timeout=240,
            check=True,
        )
    worker_log = log.read_text()

    # The connection-check queue runs no job here.
    queues = [name for name in QUEUE_NAMES if name != CHECK_QUEUE]
    failed = {name: get_queue(redis, name).failed_job_registry.get_job_ids() for name in queues}
    # The run reached every kind of destination: ingest (PMS API clients), delivery, relay.
    assert all(failed.values()), failed
    assert echo_sandbox.sandboxes.extra["apaleo"].faults.calls > 0
    for esp in ESPS:
        assert echo_sandbox.sandboxes.extra[esp].faults.calls > 0, esp
    for name in ("mews", "cloudbeds", "loyaltylion", "voucherify"):
        assert echo_sandbox.sandboxes.extra[name].faults.calls > 0, name
    assert echo_sandbox.sandboxes.glu.faults.calls > 0
    # Failure reasons do carry the echoed request (with the secrets masked), so the test sees them.
    assert "[redacted]" in worker_log

    pages = []
    auth = {"Authorization": basic("support", ADMIN_PASSWORD)}
    for ids in failed.values():
        for job_id in ids:
            page = client.get(f"/admin/rq/0/data/job/{job_id}.json", headers=auth)
            assert page.status_code == 200
            pages.append(page.get_data(as_text=True))
    for name in QUEUE_NAMES:
        page = client.get(f"/admin/rq/0/data/jobs/{name}/failed/100/asc/1.json", headers=auth)
        assert page.status_code == 200
        pages.append(page.get_data(as_text=True))

    leaks = [f"redis {key}: {hit}" for key, text in redis_texts(redis) for hit in hits(text)]
    leaks += [f"worker log: {hit}" for hit in hits(worker_log)]
    leaks += [f"web log: {hit}" for hit in hits(caplog.text)]
    leaks += [f"dashboard: {hit}" for page in pages for hit in hits(page)]
    assert not leaks, "\n".join(sorted(set(leaks))[:40])


def test_meraki_stored_body_is_the_post_without_its_secret(env, redis, sandbox):
    from wifi_support import MERAKI_SECRET, wifi_tenants_toml

    from connector.queue import INGEST_QUEUE, fetch_job

    client = create_app(env(wifi_tenants_toml(sandbox.url))).test_client()
    raw = load_fixture("meraki", "observations")
    response = client.post("/webhooks/harbour/meraki", data=raw, headers=JSON)
    assert response.status_code == 202, response.json
    (job_id,) = get_queue(redis, INGEST_QUEUE).get_job_ids()
    stored = fetch_job(redis, job_id).args[1]
    assert MERAKI_SECRET not in stored
    expected = json.loads(raw)
    del expected["secret"]
    assert json.loads(stored) == expected
    # Only the member is cut: the rest of the text is the sender's, byte for byte.
    text = raw.decode()
    assert all(line in text for line in stored.splitlines())


def test_redactor_masks_every_encoding():
    from connector.redaction import Redactor

    value = SANDBOX_KEYS["apaleo_client_secret"]
    redactor = Redactor([value])
    for form in forms(value):
        masked = redactor.redact(f"before {form} after")
        assert not hits(masked), (form, masked)
        assert masked.startswith("before ") and masked.endswith(" after")
    blob = base64.b64encode(json.dumps({"client_secret": value}).encode()).decode()
    assert redactor.redact(blob) == "[redacted]"
    assert redactor.redact("nothing secret here") == "nothing secret here"


@pytest.mark.parametrize("urlsafe", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_a_base64_token_hiding_a_secret_is_masked_however_short(urlsafe, padded):
    """The redactor skips decoding base64 tokens too short to hold its shortest secret (issue
    16). At the bound: every secret length from 8 to 40, with 0 to 3 bytes around it, padding
    dropped or not, standard or URL-safe, as written or with its slashes JSON-escaped, is still
    caught."""
    from connector.redaction import MASK, Redactor

    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    for length in range(8, 41):
        secret = "".join(chr(0x41 + (i * 7) % 26) for i in range(length))  # ASCII: a byte a character
        redactor = Redactor([secret, secret + "-longer-one"])
        for before, after in [("", ""), ("x", ""), ("", "y"), ("x", "y"), ("ab", "c"), ("abc", "")]:
            token = encode(f"{before}{secret}{after}".encode()).decode()
            token = token if padded else token.rstrip("=")
            for shown in (token, token.replace("/", "\\/")):  # as written, and JSON-escaped
                masked = redactor.redact(f"seen {shown} here")
                assert shown not in masked and MASK in masked, (length, before, after, shown, masked)


def test_per_call_values_are_masked_without_rebuilding_the_secrets_redactor():
    """A delivery's record hides the guest's email as well as the secrets: every encoding of
    both is masked, and a new guest costs a redactor of its email only (issue 16: in one set
    with the secrets, each new guest rebuilt the regular expressions of every secret)."""
    from connector import redaction

    secret = SANDBOX_KEYS["apaleo_client_secret"]
    redaction.redact("warm", [secret, "another-secret-value"])
    before = redaction._cached.cache_info()
    for guest in ("first.guest@example.org", "second.guest+tag@example.com"):
        for form in [*forms(secret), *forms(guest)]:
            masked = redaction.redact(f"before {form} after", [secret, "another-secret-value"], also=[guest])
            assert form not in masked and masked.startswith("before ") and masked.endswith(" after"), (form, masked)
    after = redaction._cached.cache_info()
    assert after.misses == before.misses  # the secrets' redactor was built once, before the guests


def test_configured_secrets_cover_every_secret_setting(monkeypatch, tmp_path, redis_url):
    from connector.redaction import configured_secrets
    from connector.settings import load_settings

    tenants = tmp_path / "tenants.toml"
    tenants.write_text(tenants_toml("http://127.0.0.1:9"))
    monkeypatch.setenv("REDIS_URL", "redis://:" + quote("redis-pass/word", safe="") + "@127.0.0.1:9/0")
    monkeypatch.setenv("CONNECTOR_TENANTS_FILE", str(tenants))
    monkeypatch.setenv("CONNECTOR_ADMIN_PASSWORD", ADMIN_PASSWORD)
    found = set(configured_secrets(load_settings()))
    expected = {v for v in all_secrets() if v not in ("apaleo-client", "voucherify-app")}
    expected -= {DEFAULT_KEYS["glu"]}
    assert expected - {SECRET_KEY} <= found
    assert "redis-pass/word" in found or quote("redis-pass/word", safe="") in found


def test_gunicorn_access_log_masks_url_tokens(tmp_path, redis_url, redis):
    """With access logs on, the Purple token in the webhook URL is masked in every encoding."""
    import http.client

    from wifi_support import PURPLE_TOKEN, purple_login, wifi_tenants_toml

    port = free_port()
    tenants = tmp_path / "tenants.toml"
    token = "purple+tok=en~harbour!"  # raw and percent-encoded forms differ
    tenants.write_text(wifi_tenants_toml("http://127.0.0.1:9").replace(PURPLE_TOKEN, token))
    access = tmp_path / "access.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": redis_url,
        "CONNECTOR_TENANTS_FILE": str(tenants),
        "CONNECTOR_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "CONNECTOR_ACCESS_LOG": str(access),
    }
    with gunicorn_server(env):
        body = purple_login()
        for form in (token, quote(token, safe="")):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", f"/webhooks/harbour/purple/{form}?t={form}", body=body, headers=JSON)
            assert conn.getresponse().status in (200, 202)
    log = access.read_text()
    assert log.count("/webhooks/harbour/purple/[redacted]?t=[redacted]") == 2, log
    assert not [form for form in forms(token) if form in log], log
