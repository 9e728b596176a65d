"""The Shopify adapter: signature checks and pure translation, fixture by fixture."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import SHOPIFY_OLD_SECRET, SHOPIFY_SECRET, load_fixture, shopify_headers
from pydantic import SecretStr

from connector.errors import PayloadError, SignatureError, UnsupportedEvent
from connector.sources.base import Envelope, InboundRequest, TranslationContext
from connector.vendors.shopify.source import SOURCE, ShopifyConfig, order_to_activity

CONFIG = ShopifyConfig(
    shop_domain="Harbour-Hotels.myshopify.com",
    secrets=[SecretStr(SHOPIFY_OLD_SECRET), SecretStr(SHOPIFY_SECRET)],
)


def inbound(body: bytes, headers: dict[str, str]) -> InboundRequest:
    return InboundRequest(raw=body, headers={k.lower(): v for k, v in headers.items()})


def translate(name: str, shop: str = "harbour-hotels.myshopify.com"):
    return order_to_activity(json.loads(load_fixture("shopify", name)), shop=shop, tenant="harbour")


class TestVerify:
    body = load_fixture("shopify", "orders_paid")

    def test_current_and_previous_secret_both_verify(self):
        SOURCE.verify(inbound(self.body, shopify_headers(self.body)), CONFIG)
        SOURCE.verify(inbound(self.body, shopify_headers(self.body, secret=SHOPIFY_OLD_SECRET)), CONFIG)

    @pytest.mark.parametrize(
        "mutate",
        [
            lambda h, b: (
                {**h, "X-Shopify-Hmac-Sha256": shopify_headers(b, secret="wrong")["X-Shopify-Hmac-Sha256"]},
                b,
            ),
            lambda h, b: (h, b.replace(b"186.90", b"986.90")),  # tampered body
            lambda h, b: ({k: v for k, v in h.items() if k != "X-Shopify-Hmac-Sha256"}, b),  # missing
            lambda h, b: ({**h, "X-Shopify-Hmac-Sha256": "not base64!"}, b),  # malformed
            lambda h, b: ({**h, "X-Shopify-Hmac-Sha256": h["X-Shopify-Hmac-Sha256"].encode().hex()}, b),  # hex, not b64
            lambda h, b: ({**h, "X-Shopify-Shop-Domain": "other.myshopify.com"}, b),  # another shop
            lambda h, b: ({k: v for k, v in h.items() if k != "X-Shopify-Shop-Domain"}, b),
        ],
        ids=["wrong-secret", "tampered-body", "missing", "malformed", "hex-encoded", "other-shop", "no-shop"],
    )
    def test_rejections(self, mutate):
        headers, body = mutate(shopify_headers(self.body), self.body)
        with pytest.raises(SignatureError):
            SOURCE.verify(inbound(body, headers), CONFIG)

    def test_empty_secret_never_verifies(self):
        config = ShopifyConfig(shop_domain="harbour-hotels.myshopify.com", secrets=[SecretStr("")])
        headers = shopify_headers(self.body, secret="")
        with pytest.raises(SignatureError, match="no secret configured"):
            SOURCE.verify(inbound(self.body, headers), config)

    def test_events_headers_without_x_prefix_verify(self):
        headers = {k.replace("X-Shopify-", "Shopify-"): v for k, v in shopify_headers(self.body).items()}
        SOURCE.verify(inbound(self.body, headers), CONFIG)
        envelope = SOURCE.identify(inbound(self.body, headers), CONFIG, "harbour")
        assert envelope.event_type == "orders/paid"


class TestIdentify:
    body = load_fixture("shopify", "orders_paid")

    def test_topic_and_webhook_id(self):
        envelope = SOURCE.identify(inbound(self.body, shopify_headers(self.body, webhook_id="wh-1")), CONFIG, "harbour")
        assert (envelope.source, envelope.tenant, envelope.event_type, envelope.delivery_id) == (
            "shopify",
            "harbour",
            "orders/paid",
            "wh-1",
        )

    def test_topic_not_configured_is_ignored_with_reason(self):
        with pytest.raises(UnsupportedEvent, match="orders/create is not a trigger"):
            SOURCE.identify(inbound(self.body, shopify_headers(self.body, topic="orders/create")), CONFIG, "harbour")

    def test_configured_topic_is_accepted(self):
        config = CONFIG.model_copy(update={"topics": ["orders/create"]})
        envelope = SOURCE.identify(inbound(self.body, shopify_headers(self.body, topic="orders/create")), config, "h")
        assert envelope.event_type == "orders/create"

    @pytest.mark.parametrize("header", ["X-Shopify-Webhook-Id", "X-Shopify-Topic"])
    def test_missing_identity_headers_are_payload_errors(self, header):
        headers = {k: v for k, v in shopify_headers(self.body).items() if k != header}
        with pytest.raises(PayloadError):
            SOURCE.identify(inbound(self.body, headers), CONFIG, "harbour")

    def test_unknown_topic_in_config_is_rejected(self):
        with pytest.raises(ValueError, match="unsupported topics"):
            ShopifyConfig(shop_domain="x.myshopify.com", secrets=[SecretStr("s")], topics=["products/create"])


class TestTranslate:
    def test_hkd_order(self):
        activity = translate("orders_paid")
        assert activity.type == "Shopify order"
        assert activity.business_key == "shopify:harbour-hotels.myshopify.com:order:6200407294252"
        assert activity.spend == 18690
        assert activity.currency_code == "HKD"
        assert activity.happened_at.isoformat() == "2026-11-23T23:10:14-05:00"
        assert activity.person.email == "ada.lovelace@example.com"
        assert activity.person.first_name == "Ada"
        assert activity.person.marketing_consent is True
        assert activity.source == "shopify"

    def test_zero_decimal_currency_uses_shop_money_not_presentment(self):
        activity = translate("orders_paid__jpy", shop="marina-tokyo.myshopify.com")
        assert (activity.spend, activity.currency_code) == (12800, "JPY")
        assert activity.happened_at.utcoffset().total_seconds() == 9 * 3600

    def test_three_decimal_currency(self):
        activity = translate("orders_paid__kwd")
        assert (activity.spend, activity.currency_code) == (12125, "KWD")
        assert activity.person.marketing_consent is False

    def test_guest_checkout_uses_order_email(self):
        activity = translate("orders_paid__guest_checkout")
        assert activity.person.email == "walk.in@example.com"
        assert activity.person.marketing_consent is None  # not reported: never invented

    def test_test_order_is_ignored(self):
        with pytest.raises(UnsupportedEvent, match="test order") as caught:
            translate("orders_paid__test")
        assert caught.value.counter == "test_order"

    def test_order_without_any_email_is_ignored(self):
        with pytest.raises(UnsupportedEvent, match="no customer email") as caught:
            translate("orders_paid__no_email")
        assert caught.value.counter == "no_email"

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"total_price_set": None, "total_price": "12,50"}, "12,50"),
            ({"total_price_set": None, "total_price": 186.9}, "not a decimal string"),
            ({"total_price_set": {"shop_money": {"amount": "1.999", "currency_code": "HKD"}}}, "decimal places"),
            ({"processed_at": "2026-11-23T23:10:14"}, "no UTC offset"),
            ({"processed_at": "yesterday"}, "not an ISO 8601"),
            ({"id": "6200407294252"}, "numeric id"),
        ],
    )
    def test_malformed_orders_are_payload_errors(self, change, message):
        order = {**json.loads(load_fixture("shopify", "orders_paid")), **change}
        with pytest.raises(PayloadError, match=message):
            order_to_activity(order, shop="harbour-hotels.myshopify.com", tenant="harbour")

    def test_adapter_to_activities(self):
        envelope = Envelope("shopify", "harbour", "orders/paid", "wh-1", "2026-11-25T00:00:00+00:00")
        context = TranslationContext("harbour", ZoneInfo("Europe/London"), "glu", datetime.now(UTC))
        activities = SOURCE.to_activities(envelope, json.loads(load_fixture("shopify", "orders_paid")), context, CONFIG)
        assert [a.business_key for a in activities] == ["shopify:harbour-hotels.myshopify.com:order:6200407294252"]
