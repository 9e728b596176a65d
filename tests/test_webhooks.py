"""The intake: every bad-input rule of PRODUCT.md, dedup, tenant isolation, Redis outage."""

from __future__ import annotations

import io

import pytest
from conftest import MARINA_SHOPIFY_SECRET, load_fixture, shopify_headers

from connector.embedded_redis import free_port
from connector.metrics import read_counters
from connector.queue import INGEST_QUEUE, get_queue
from connector.web import create_app

BODY = load_fixture("shopify", "orders_paid")
URL = "/webhooks/harbour/shopify"


def ingest_jobs(redis) -> int:
    return get_queue(redis, INGEST_QUEUE).count


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.data
    assert response.is_json
    assert response.json["error"]["code"] == code
    assert response.json["error"]["message"]


def test_valid_webhook_is_accepted_with_one_job(client, redis):
    response = client.post(URL, data=BODY, headers=shopify_headers(BODY))
    assert response.status_code == 202
    assert response.json["status"] == "accepted"
    assert response.json["job"].startswith("ingest-")
    assert ingest_jobs(redis) == 1
    job = get_queue(redis, INGEST_QUEUE).fetch_job(response.json["job"])
    assert job.args[0]["delivery_id"] == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert job.args[1].encode() == BODY  # the verified bytes, untouched


def test_same_delivery_is_a_duplicate_and_adds_no_job(client, redis):
    first = client.post(URL, data=BODY, headers=shopify_headers(BODY))
    second = client.post(URL, data=BODY, headers=shopify_headers(BODY))
    assert second.status_code == 200
    assert second.json == {"status": "duplicate", "job": first.json["job"]}
    assert ingest_jobs(redis) == 1
    counters = read_counters(redis)
    assert counters["webhooks|outcome=accepted|source=shopify|tenant=harbour"] == 1
    assert counters["webhooks|outcome=duplicate|source=shopify|tenant=harbour"] == 1


def test_new_delivery_id_for_the_same_order_is_a_new_job(client, redis):
    client.post(URL, data=BODY, headers=shopify_headers(BODY, webhook_id="one"))
    response = client.post(URL, data=BODY, headers=shopify_headers(BODY, webhook_id="two"))
    assert response.status_code == 202
    assert ingest_jobs(redis) == 2  # the business key dedups downstream


def test_dedup_marker_expires_after_the_configured_ttl(env, redis):
    settings = env(CONNECTOR_DEDUP_TTL="1")
    client = create_app(settings).test_client()
    client.post(URL, data=BODY, headers=shopify_headers(BODY))
    ttl = redis.ttl(next(iter(redis.scan_iter("connector:seen:*"))))
    assert 0 < ttl <= 1


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        (shopify_headers(BODY, secret="not-the-secret"), "invalid_signature"),
        ({k: v for k, v in shopify_headers(BODY).items() if k != "X-Shopify-Hmac-Sha256"}, "invalid_signature"),
        ({**shopify_headers(BODY), "X-Shopify-Hmac-Sha256": "%%%"}, "invalid_signature"),
        (shopify_headers(BODY, shop="marina-tokyo.myshopify.com"), "invalid_signature"),
    ],
    ids=["wrong-secret", "missing", "malformed", "other-shop"],
)
def test_bad_signature_is_401_and_no_job(client, redis, headers, code):
    assert_error(client.post(URL, data=BODY, headers=headers), 401, code)
    assert ingest_jobs(redis) == 0


def test_tampered_body_is_401(client, redis):
    tampered = BODY.replace(b'"186.90"', b'"1.00"', 1)
    assert_error(client.post(URL, data=tampered, headers=shopify_headers(BODY)), 401, "invalid_signature")
    assert ingest_jobs(redis) == 0


def test_one_tenants_secret_never_authenticates_another_tenants_url(client, redis):
    headers = shopify_headers(BODY, secret=MARINA_SHOPIFY_SECRET, shop="marina-tokyo.myshopify.com")
    assert_error(client.post(URL, data=BODY, headers=headers), 401, "invalid_signature")
    assert client.post("/webhooks/marina/shopify", data=BODY, headers=headers).status_code == 202
    assert ingest_jobs(redis) == 1


def test_unknown_tenant_and_source_are_404(client, redis):
    assert_error(
        client.post("/webhooks/nobody/shopify", data=BODY, headers=shopify_headers(BODY)), 404, "unknown_tenant"
    )
    assert_error(
        client.post("/webhooks/harbour/woocommerce", data=BODY, headers=shopify_headers(BODY)), 404, "unknown_source"
    )
    assert_error(client.post("/nowhere", data=BODY), 404, "not_found")
    assert ingest_jobs(redis) == 0


def test_unparseable_body_is_400(client, redis):
    body = b'{"id": 1, "truncated": '
    assert_error(client.post(URL, data=body, headers=shopify_headers(body)), 400, "invalid_json")
    assert ingest_jobs(redis) == 0


@pytest.mark.parametrize(
    ("body", "is_json"),
    [
        (b'{"id": 1}', True),
        (b'{"id": 123456789012345678901234567890}', True),  # beyond 64 bits: a float, as orjson reads it
        (b'{"id": 1' + b"0" * 400 + b"}", False),  # an integer no float holds
        (b'{"ratio": NaN}', False),  # not JSON (RFC 8259), although Python's json would read it
        (b'{"n": -Infinity}', False),
        (b'{"n": 1e400}', False),  # valid JSON syntax, but json reads infinity and orjson refuses
        (b'{"n": -18446744073709551617}', True),  # a float on both sides
        (b'{"name": "\\ud800"}', True),  # a lone surrogate escape (read as U+FFFD)
        (b'\xef\xbb\xbf{"id": 1}', True),  # a UTF-8 byte order mark, which RFC 8259 lets parsers ignore
        (b"[" * 64 + b"]" * 64, True),  # the deepest nesting allowed
        (b"[" * 65 + b"]" * 65, False),  # orjson reads it: the depth limit refuses it
        (b"[" * 2000 + b"]" * 2000, False),  # orjson refuses it, json would raise RecursionError
        (b'{"id": 1', False),
        (b'{"name": "caf\xe9"}', False),  # Latin-1, not UTF-8
        ('{"id": 1}'.encode("utf-16"), False),  # json.loads(bytes) would guess UTF-16; the worker reads UTF-8
        (b"", False),
    ],
)
def test_json_check_accepts_exactly_what_the_worker_can_read(body, is_json):
    from connector.sources.base import BodyError, load_body_text
    from connector.web.webhooks import read_json

    try:
        value = read_json(body)
    except BodyError:
        value = BodyError
    if not is_json:
        assert value is BodyError
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return  # never stored: the worker only ever reads UTF-8 text
        with pytest.raises(BodyError):  # the worker applies the same rule to the stored text
            load_body_text(text)
    else:
        assert value is not BodyError
        assert load_body_text(body.decode("utf-8")) == value  # the worker reads the same value


def test_body_with_a_byte_order_mark_is_accepted(client, redis):
    body = b"\xef\xbb\xbf" + BODY
    response = client.post(URL, data=body, headers=shopify_headers(body))
    assert response.status_code == 202, response.data
    assert ingest_jobs(redis) == 1


def test_body_in_utf16_is_400_and_makes_no_job(client, redis):
    body = BODY.decode("utf-8").encode("utf-16")
    assert_error(client.post(URL, data=body, headers=shopify_headers(body)), 400, "invalid_json")
    assert ingest_jobs(redis) == 0


def test_body_with_a_very_large_integer_is_accepted(client, redis):
    body = BODY.replace(b'"id":', b'"big": 123456789012345678901234567890, "id":', 1)
    assert body != BODY
    response = client.post(URL, data=body, headers=shopify_headers(body))
    assert response.status_code == 202, response.data
    assert ingest_jobs(redis) == 1


def test_missing_webhook_id_is_400(client, redis):
    headers = {k: v for k, v in shopify_headers(BODY).items() if k != "X-Shopify-Webhook-Id"}
    assert_error(client.post(URL, data=BODY, headers=headers), 400, "invalid_payload")
    assert ingest_jobs(redis) == 0


def test_body_over_the_limit_is_413(client, redis):
    body = b'{"padding": "' + b"x" * (1024 * 1024) + b'"}'
    assert_error(client.post(URL, data=body, headers=shopify_headers(body)), 413, "payload_too_large")
    assert ingest_jobs(redis) == 0


def test_chunked_body_over_the_limit_is_413(client, redis):
    body = b'{"padding": "' + b"x" * (1024 * 1024) + b'"}'

    headers = {**shopify_headers(body), "Transfer-Encoding": "chunked"}
    # No Content-Length: the limit must be enforced while reading (gunicorn marks such input terminated).
    response = client.post(
        URL, input_stream=io.BytesIO(body), headers=headers, environ_overrides={"wsgi.input_terminated": True}
    )
    assert_error(response, 413, "payload_too_large")
    assert ingest_jobs(redis) == 0


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_wrong_content_type_is_415(client, redis, content_type):
    headers = {k: v for k, v in shopify_headers(BODY).items() if k != "Content-Type"}
    if content_type:
        headers["Content-Type"] = content_type
    assert_error(client.post(URL, data=BODY, headers=headers), 415, "unsupported_media_type")
    assert ingest_jobs(redis) == 0


def test_json_with_charset_is_accepted(client):
    headers = {**shopify_headers(BODY), "Content-Type": "application/json; charset=utf-8"}
    assert client.post(URL, data=BODY, headers=headers).status_code == 202


def test_irrelevant_topic_is_ignored_with_reason_and_no_job(client, redis):
    body = load_fixture("shopify", "orders_create")
    response = client.post(URL, data=body, headers=shopify_headers(body, topic="orders/create"))
    assert response.status_code == 200
    assert response.json["status"] == "ignored"
    assert "orders/create" in response.json["reason"]
    assert ingest_jobs(redis) == 0


def test_get_on_a_webhook_url_is_405_json(client):
    assert_error(client.get(URL), 405, "method_not_allowed")


def test_redis_down_is_503_with_retry_after_and_nothing_acknowledged(env):
    settings = env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    client = create_app(settings).test_client()
    response = client.post(URL, data=BODY, headers=shopify_headers(BODY))
    assert_error(response, 503, "queue_unavailable")
    assert response.headers["Retry-After"] == "30"
    assert_error(client.get("/readyz"), 503, "redis_unavailable")
    assert client.get("/healthz").status_code == 200


def test_secrets_never_appear_in_answers_or_job_arguments(client, redis):
    response = client.post(URL, data=BODY, headers=shopify_headers(BODY, secret="wrong"))
    assert b"shpss_" not in response.data
    accepted = client.post(URL, data=BODY, headers=shopify_headers(BODY))
    job = get_queue(redis, INGEST_QUEUE).fetch_job(accepted.json["job"])
    assert "shpss_" not in repr(job.args) and "sandbox-glu-key" not in repr(job.args)


@pytest.mark.parametrize("body", [b"", b"null", b"[]", b'"x"', b"\xff\xfe", b"{" * 5000])
def test_odd_bodies_never_500(client, body):
    response = client.post(URL, data=body, headers=shopify_headers(body))
    assert response.status_code in {202, 400}
    if response.status_code == 202:
        assert response.json["status"] == "accepted"


def test_lazy_header_lookups_agree_with_werkzeugs_headers():
    from werkzeug.datastructures import EnvironHeaders

    from connector.web.webhooks import WsgiHeaders

    environ = {
        "HTTP_X_SHOPIFY_HMAC_SHA256": "c2ln",
        "HTTP_X_SHOPIFY_TOPIC": "orders/paid",
        "HTTP_HOST": "example.com",
        "HTTP_WEBHOOK_ID": "msg_1",
        "HTTP_X_HOTSPOTSYSTEM_HMAC_SHA256": "aG1hYw==",  # an underscore header let through by gunicorn
        "HTTP_HTTP_X_HOTSPOTSYSTEM_HMAC_SHA256": "b3RoZXI=",
        "CONTENT_TYPE": "application/json; charset=utf-8",
        "CONTENT_LENGTH": "12",
        "HTTP_CONTENT_TYPE": "text/plain",  # a client's duplicate that WSGI servers may leave
        "PATH_INFO": "/webhooks/t/shopify",
        "wsgi.input": io.BytesIO(),
    }
    full = {name.lower(): value for name, value in EnvironHeaders(environ).items()}
    lazy = WsgiHeaders(environ)
    assert dict(lazy) == full and len(lazy) == len(full)
    assert full["x-shopify-hmac-sha256"] == "c2ln" and full["content-type"].startswith("application/json")
    for name in [*full, "content-length", "x-missing", "X-Shopify-Hmac-Sha256", "path-info", "http-content-type"]:
        assert lazy.get(name.lower()) == full.get(name.lower()), name
        assert (name.lower() in lazy) is (name.lower() in full)
    environ["CONTENT_LENGTH"] = ""  # empty means absent, as werkzeug reads it
    assert "content-length" not in WsgiHeaders(environ) and "content-length" not in dict(WsgiHeaders(environ))
