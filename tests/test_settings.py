"""Settings and the tenants file: env: secrets, validation errors that name the bad key."""

from __future__ import annotations

import pytest

from connector.errors import ConfigError
from connector.settings import DEFAULT_RETRY_SCHEDULE, load_settings, parse_tenants

GOOD = {
    "tenants": {
        "harbour-hotels": {
            "timezone": "Europe/London",
            "loyalty": {"platform": "glu", "base_url": "https://api.glu.io/", "api_key": "env:HARBOUR_GLU_KEY"},
            "sources": {
                "shopify": {
                    "shop_domain": "harbour-hotels.myshopify.com",
                    "secrets": ["env:HARBOUR_SHOPIFY_SECRET", "older"],
                }
            },
        }
    }
}


@pytest.fixture(autouse=True)
def secrets_env(monkeypatch):
    monkeypatch.setenv("HARBOUR_GLU_KEY", "glu-key-from-env")
    monkeypatch.setenv("HARBOUR_SHOPIFY_SECRET", "shopify-secret-from-env")


def with_change(path: list[str], value) -> dict:
    import copy

    document = copy.deepcopy(GOOD)
    node = document
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return document


def test_env_secrets_are_resolved_and_hidden():
    tenant = parse_tenants(GOOD)["harbour-hotels"]
    assert tenant.loyalty.api_key.get_secret_value() == "glu-key-from-env"
    assert tenant.loyalty.base_url == "https://api.glu.io"
    shopify = tenant.sources["shopify"]
    assert [s.get_secret_value() for s in shopify.secrets] == ["shopify-secret-from-env", "older"]
    assert "glu-key-from-env" not in repr(tenant)
    assert shopify.topics == ["orders/paid"]


def test_missing_env_variable_names_key_and_variable(monkeypatch):
    monkeypatch.delenv("HARBOUR_GLU_KEY")
    with pytest.raises(
        ConfigError,
        match=r"tenants\.harbour-hotels\.loyalty\.api_key: environment variable "
        r"HARBOUR_GLU_KEY is not set",
    ):
        parse_tenants(GOOD)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ["tenants", "harbour-hotels", "sources", "shopify", "shop_domain"],
            KeyError,
            r"tenants\.harbour-hotels\.sources\.shopify\.shop_domain: Field required",
        ),
        (
            ["tenants", "harbour-hotels", "sources", "shopify", "secrets"],
            [],
            r"tenants\.harbour-hotels\.sources\.shopify\.secrets",
        ),
        (
            ["tenants", "harbour-hotels", "sources", "shopify", "secret"],
            "typo",
            r"tenants\.harbour-hotels\.sources\.shopify\.secret: Extra inputs",
        ),
        (["tenants", "harbour-hotels", "sources", "woocommerce"], {}, r"sources\.woocommerce: unknown source"),
        (["tenants", "harbour-hotels", "timezone"], "Mars/Olympus", r"tenants\.harbour-hotels\.timezone"),
        (["tenants", "harbour-hotels", "loyalty", "platform"], "salesforce", r"loyalty\.platform"),
        (["tenants", "harbour-hotels", "loyalty", "base_url"], "api.glu.io", r"loyalty\.base_url"),
        (["tenants", "harbour-hotels", "loyalty"], KeyError, r"tenants\.harbour-hotels\.loyalty: Field required"),
    ],
)
def test_invalid_tenants_name_the_bad_key(path, value, message):
    with pytest.raises(ConfigError, match=message):
        parse_tenants(with_change(path, value))


def test_tenant_names_must_be_url_safe():
    with pytest.raises(ConfigError, match="Harbour Hotels"):
        parse_tenants({"tenants": {"Harbour Hotels": GOOD["tenants"]["harbour-hotels"]}})


def test_tenants_file_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("CONNECTOR_TENANTS_FILE", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="not found"):
        load_settings()
    broken = tmp_path / "broken.toml"
    broken.write_text("[tenants.x\n")
    monkeypatch.setenv("CONNECTOR_TENANTS_FILE", str(broken))
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_settings()


def test_environment_settings(tmp_path, monkeypatch):
    path = tmp_path / "tenants.toml"
    path.write_text("")
    monkeypatch.setenv("CONNECTOR_TENANTS_FILE", str(path))
    monkeypatch.setenv("CONNECTOR_RETRY_SCHEDULE", "5, 30,600")
    monkeypatch.setenv("CONNECTOR_DEDUP_TTL", "600")
    settings = load_settings()
    assert settings.retry_schedule == (5, 30, 600)
    assert settings.dedup_ttl == 600
    monkeypatch.setenv("CONNECTOR_RETRY_SCHEDULE", "soon")
    with pytest.raises(ConfigError, match="CONNECTOR_RETRY_SCHEDULE"):
        load_settings()
    monkeypatch.setenv("CONNECTOR_RETRY_SCHEDULE", "10")
    monkeypatch.setenv("CONNECTOR_DEDUP_TTL", "-1")
    with pytest.raises(ConfigError, match="CONNECTOR_DEDUP_TTL"):
        load_settings()


def test_defaults_follow_the_product_contract(tmp_path, monkeypatch):
    for name in ("CONNECTOR_RETRY_SCHEDULE", "CONNECTOR_DEDUP_TTL", "CONNECTOR_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "tenants.toml"
    path.write_text("")
    monkeypatch.setenv("CONNECTOR_TENANTS_FILE", str(path))
    settings = load_settings()
    assert sum(settings.retry_schedule) >= 24 * 3600
    assert settings.retry_schedule == DEFAULT_RETRY_SCHEDULE
    assert settings.dedup_ttl == 259200
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.admin_password is None


def test_example_and_demo_tenant_files_are_valid(monkeypatch):
    import tomllib
    from pathlib import Path

    monkeypatch.setenv("DEMO_SHOPIFY_SECRET", "x")
    root = Path(__file__).parent.parent
    assert "demo" in parse_tenants(tomllib.loads((root / "config/demo-tenants.toml").read_text()))
    assert "harbour-hotels" in parse_tenants(tomllib.loads((root / "config/tenants.example.toml").read_text()))
