"""Shopify installations: sealed at rest, a wrong key stops start-up, and every process sees an
installation (or its removal) within a second, without a restart."""

from __future__ import annotations

import pytest
from conftest import tenants_toml
from stack_helpers import redis_texts

from connector.directory import TenantDirectory
from connector.errors import ConfigError
from connector.platforms.base import UnconfiguredPlatform
from connector.secretbox import SecretBox, WrongSecretKeyError
from connector.settings import load_settings
from connector.vendors.glu.config import GluConfig
from connector.vendors.shopify.installations import InstallationStore, valid_shop
from connector.vendors.shopify.source import ShopifyConfig

APP = {
    "SHOPIFY_API_KEY": "app-client-id",
    "SHOPIFY_API_SECRET": "shpss_app_secret_for_tests",
    "CONNECTOR_PUBLIC_URL": "https://connector.example",
    "CONNECTOR_SECRET_KEY": "a-stable-secret-key-of-the-operator",
}
TOKEN = "shpat_token_of_the_shop_0123456789"


@pytest.fixture
def app_settings(env, sandbox):
    return env(tenants_toml(sandbox.url), **APP)


def test_a_sealed_text_opens_only_with_its_key():
    box = SecretBox("key-one", "test")
    sealed = box.encrypt("hello")
    assert "hello" not in sealed and box.decrypt(sealed) == "hello"
    with pytest.raises(WrongSecretKeyError):
        SecretBox("key-two", "test").decrypt(sealed)
    with pytest.raises(WrongSecretKeyError):
        SecretBox("key-one", "another purpose").decrypt(sealed)  # one derived key per purpose


def test_a_process_with_another_secret_key_stops_at_start(redis):
    InstallationStore.open(redis, "the-first-key")
    InstallationStore.open(redis, "the-first-key")  # the same key: fine
    with pytest.raises(WrongSecretKeyError, match="CONNECTOR_SECRET_KEY is not the key"):
        InstallationStore.open(redis, "another-key")


def test_the_token_is_never_stored_in_clear(redis):
    store = InstallationStore.open(redis, "k")
    store.install("harbour-shop.myshopify.com", "harbour-shop", ["read_orders"], TOKEN)
    assert store.token("harbour-shop.myshopify.com") == TOKEN
    assert not [key for key, text in redis_texts(redis) if TOKEN in text]
    store.mark_uninstalled("harbour-shop.myshopify.com")
    assert store.token("harbour-shop.myshopify.com") is None
    installation = store.get("harbour-shop.myshopify.com")
    assert installation is not None and not installation.installed


@pytest.mark.parametrize(
    ("shop", "valid"),
    [
        ("harbour-shop.myshopify.com", True),
        ("Harbour-Shop.myshopify.com", True),
        ("-harbour.myshopify.com", False),
        ("harbour.myshopify.com.evil.example", False),
        ("harbour.example.com", False),
        ("harbour_shop.myshopify.com", False),
        ("", False),
    ],
)
def test_shop_domains_follow_shopifys_rule(shop, valid):
    assert (valid_shop(shop) is not None) is valid


def test_the_app_settings_are_checked_together(env, sandbox, monkeypatch):
    monkeypatch.delenv("CONNECTOR_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError) as raised:
        env(tenants_toml(sandbox.url), SHOPIFY_API_KEY="app-client-id")
    message = str(raised.value)
    for name in ("SHOPIFY_API_SECRET", "CONNECTOR_PUBLIC_URL", "CONNECTOR_SECRET_KEY"):
        assert name in message


def test_an_installation_is_a_tenant_at_once_and_gone_at_uninstall(app_settings, redis):
    directory = TenantDirectory(app_settings, redis, recheck=0)
    other_process = TenantDirectory(load_settings(), redis, recheck=0)
    store = directory.store
    assert store is not None
    name = directory.name_for_new_shop("lighthouse-cafe.myshopify.com")
    assert name == "lighthouse-cafe"
    store.install("lighthouse-cafe.myshopify.com", name, ["read_orders", "read_customers"], TOKEN)

    tenant = other_process.get("lighthouse-cafe")
    assert tenant is not None
    assert isinstance(tenant.loyalty, UnconfiguredPlatform)
    assert tenant.loyalty.skip_reason("shopify")
    source = tenant.sources["shopify"]
    assert isinstance(source, ShopifyConfig)
    assert [s.get_secret_value() for s in source.secrets] == [APP["SHOPIFY_API_SECRET"]]

    store.set_loyalty(
        "lighthouse-cafe.myshopify.com", {"platform": "glu", "base_url": "https://glu.example", "api_key": "k"}
    )
    tenant = other_process.get("lighthouse-cafe")
    assert tenant is not None and isinstance(tenant.loyalty, GluConfig)

    store.mark_uninstalled("lighthouse-cafe.myshopify.com")
    assert other_process.get("lighthouse-cafe") is None
    assert other_process.by_shop("lighthouse-cafe.myshopify.com") is None


def test_an_installation_of_a_tenants_file_shop_attaches_to_that_tenant(app_settings, redis):
    directory = TenantDirectory(app_settings, redis, recheck=0)
    assert directory.store is not None
    assert directory.name_for_new_shop("harbour-hotels.myshopify.com") == "harbour"
    directory.store.install("harbour-hotels.myshopify.com", "harbour", ["read_orders"], TOKEN)
    tenant = directory.by_shop("harbour-hotels.myshopify.com")
    assert tenant is not None and tenant.name == "harbour"
    source = tenant.sources["shopify"]
    assert isinstance(source, ShopifyConfig)
    secrets = [s.get_secret_value() for s in source.secrets]
    assert APP["SHOPIFY_API_SECRET"] in secrets and len(secrets) == 3  # the file's two, and the app's


def test_a_new_shop_whose_handle_is_a_file_tenant_gets_another_name(app_settings, redis):
    directory = TenantDirectory(app_settings, redis, recheck=0)
    assert directory.name_for_new_shop("harbour.myshopify.com") == "harbour-2"  # 'harbour' is a file tenant


def test_without_the_app_the_directory_reads_no_installations(settings, redis):
    directory = TenantDirectory(settings, redis)
    assert directory.store is None
    assert set(directory.all()) == set(settings.tenants)


def test_another_secret_key_stops_check_config_the_worker_and_the_web_app(app_settings, redis, monkeypatch, capsys):
    """A process started with another CONNECTOR_SECRET_KEY than the one that sealed the tokens
    stops at start, naming the setting, before it could fail to decrypt anything later."""
    from connector.cli import main
    from connector.web import create_app

    InstallationStore.open(redis, APP["CONNECTOR_SECRET_KEY"]).install(
        "lighthouse-cafe.myshopify.com", "lighthouse-cafe", ["read_orders"], TOKEN
    )
    monkeypatch.setenv("CONNECTOR_SECRET_KEY", "a-different-key")
    for command in (["check-config"], ["worker", "--burst"]):
        with pytest.raises(SystemExit) as stopped:
            main(command)
        assert stopped.value.code == 1
        captured = capsys.readouterr()
        assert "CONNECTOR_SECRET_KEY is not the key" in captured.out + captured.err
    with pytest.raises(WrongSecretKeyError):
        create_app(load_settings())
    monkeypatch.setenv("CONNECTOR_SECRET_KEY", APP["CONNECTOR_SECRET_KEY"])
    create_app(load_settings())  # the right key: starts
