"""``[tenants.<t>.loyalty]``: one table shape per platform, errors that name the bad key."""

from __future__ import annotations

import tomllib

import pytest

from connector.errors import ConfigError
from connector.settings import parse_tenants
from connector.vendors.glu.config import GluConfig
from connector.vendors.loyaltylion.config import LoyaltyLionConfig
from connector.vendors.voucherify.config import VoucherifyConfig


def tenants(loyalty: str) -> dict[str, object]:
    """A one-tenant document with the given loyalty table body."""
    return tomllib.loads(f"[tenants.acme]\n[tenants.acme.loyalty]\n{loyalty}")


def test_product_md_glu_example_still_parses() -> None:
    parsed = parse_tenants(tenants('platform = "glu"\nbase_url = "https://api.glu.io"\napi_key = "k"\n'))
    loyalty = parsed["acme"].loyalty
    assert isinstance(loyalty, GluConfig)
    assert loyalty.base_url == "https://api.glu.io"
    assert loyalty.skip_reason("shopify") is None


def test_loyaltylion_defaults() -> None:
    parsed = parse_tenants(tenants('platform = "loyaltylion"\napi_key = "secret"\n'))
    loyalty = parsed["acme"].loyalty
    assert isinstance(loyalty, LoyaltyLionConfig)
    assert loyalty.base_url == "https://api.loyaltylion.com"
    assert loyalty.skip_shopify_orders is True
    assert loyalty.guest == "never"
    assert loyalty.site_id is None
    assert loyalty.rule_name("Checked in") == "hotel_checked_in"
    assert loyalty.rule_name("Connected to wifi") == "wifi_login"
    assert "LoyaltyLion imports Shopify orders" in (loyalty.skip_reason("shopify") or "")
    assert loyalty.skip_reason("mews") is None


def test_loyaltylion_mapping_overrides_defaults_and_accepts_built_ins() -> None:
    parsed = parse_tenants(
        tenants(
            'platform = "loyaltylion"\napi_key = "secret"\nsite_id = "site_42"\nskip_shopify_orders = false\n'
            '[tenants.acme.loyalty.activity_names]\n"Connected to wifi" = "$visit"\n'
            '[tenants.acme.loyalty.activity_urls]\n"Connected to wifi" = "https://acme.example/wifi"\n'
        )
    )
    loyalty = parsed["acme"].loyalty
    assert isinstance(loyalty, LoyaltyLionConfig)
    assert loyalty.rule_name("Connected to wifi") == "$visit"
    assert loyalty.rule_name("Booking") == "hotel_booking"
    assert loyalty.skip_reason("shopify") is None


def test_voucherify_defaults() -> None:
    parsed = parse_tenants(tenants('platform = "voucherify"\napp_id = "a"\napp_token = "t"\n'))
    loyalty = parsed["acme"].loyalty
    assert isinstance(loyalty, VoucherifyConfig)
    assert loyalty.base_url == "https://api.voucherify.io"
    assert loyalty.event_name("Checked out") == "hotel_checked_out"
    assert loyalty.customer_source_id == "email"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('platform = "loyaltylion"\n', "tenants.acme.loyalty.api_key: Field required"),
        ('platform = "loyaltylion"\napi_key = "k"\napikey = "k"\n', "tenants.acme.loyalty.apikey: Extra inputs"),
        ('platform = "voucherify"\napp_id = "a"\n', "tenants.acme.loyalty.app_token: Field required"),
        ('platform = "voucherify"\napp_id = "a"\napp_token = "t"\napi_key = "k"\n', "tenants.acme.loyalty.api_key"),
        ('platform = "glu"\nbase_url = "api.glu.io"\n', "tenants.acme.loyalty.base_url: Value error, must start"),
        ('platform = "glu"\nbase_url = "https://x"\nsite_id = "1"\n', "tenants.acme.loyalty.site_id: Extra inputs"),
        (
            'platform = "gluu"\nbase_url = "https://x"\n',
            "tenants.acme.loyalty.platform: must be one of glu, loyaltylion, voucherify (not 'gluu')",
        ),
        ('base_url = "https://x"\n', "tenants.acme.loyalty.platform: required; one of glu, loyaltylion, voucherify"),
        (
            'platform = "loyaltylion"\napi_key = "k"\nguest = "sometimes"\n',
            "tenants.acme.loyalty.guest: Input should be 'never', 'always' or 'without_consent'",
        ),
        (
            'platform = "loyaltylion"\napi_key = "k"\n[tenants.acme.loyalty.activity_names]\n"Shopify order" = "x"\n',
            "tenants.acme.loyalty.activity_names: Value error, 'Shopify order' goes through the Orders API",
        ),
        (
            'platform = "loyaltylion"\napi_key = "k"\n[tenants.acme.loyalty.activity_names]\n"Booking" = "a/b"\n',
            "tenants.acme.loyalty.activity_names: Value error, 'a/b' (for 'Booking') is not a rule identifier",
        ),
        (
            'platform = "voucherify"\napp_id = "a"\napp_token = "t"\n'
            '[tenants.acme.loyalty.event_names]\n"Stay" = "x"\n',
            "tenants.acme.loyalty.event_names: Value error, unknown activity type 'Stay'",
        ),
        (
            'platform = "loyaltylion"\napi_key = "k"\nrequests_per_second = 50\n',
            "tenants.acme.loyalty.requests_per_second: Input should be less than or equal to 20",
        ),
    ],
)
def test_errors_name_the_bad_key(table: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_tenants(tenants(table))
    assert message in str(caught.value)
