"""Settings and the tenants file: env: secrets, validation errors that name the bad key."""

from __future__ import annotations

import pytest

from connector.errors import ConfigError
from connector.settings import DEFAULT_RETRY_SCHEDULE, ConfigProblemsError, load_settings, parse_tenants

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


def test_every_problem_of_every_tenant_is_reported_in_one_pass(monkeypatch):
    monkeypatch.delenv("HARBOUR_GLU_KEY")
    harbour = GOOD["tenants"]["harbour-hotels"]
    document = {
        "extra": {},
        "tenants": {
            "harbour-hotels": {
                **harbour,
                "timezone": "Mars/Olympus",
                "sources": {"shopify": {"secrets": ["x"]}, "woocommerce": {}},
                "esp": {"provider": "klaviyo"},
            },
            "marina": {
                "loyalty": {"platform": "glu", "base_url": "api.glu.io", "api_key": "env:"},
                "sources": {"shopify": {"shop_domain": "m.myshopify.com", "secrets": ["env:MARINA_UNSET"]}},
            },
        },
    }
    with pytest.raises(ConfigProblemsError) as caught:
        parse_tenants(document)
    problems = caught.value.problems
    expected = [
        "extra: unknown top-level table",
        "tenants.harbour-hotels.loyalty.api_key: environment variable HARBOUR_GLU_KEY is not set",
        "tenants.harbour-hotels.timezone: ",
        "tenants.harbour-hotels.sources.shopify.shop_domain: Field required",
        "tenants.harbour-hotels.sources.woocommerce: unknown source",
        "tenants.harbour-hotels.esp.api_key: Field required",
        "tenants.marina.loyalty.api_key: ",
        "tenants.marina.loyalty.base_url: ",
        "tenants.marina.sources.shopify.secrets.0: environment variable MARINA_UNSET is not set",
    ]
    for start in expected:
        assert sum(problem.startswith(start) for problem in problems) == 1, (start, problems)
    assert len(problems) == len(expected), problems  # a missing variable is not also "Field required"
    assert str(caught.value).count("; ") == len(expected) - 1


def test_env_prefix_without_a_name_says_the_name_is_missing():
    with pytest.raises(ConfigError) as caught:
        parse_tenants(with_change(["tenants", "harbour-hotels", "loyalty", "api_key"], "env:"))
    message = str(caught.value)
    assert message.startswith("tenants.harbour-hotels.loyalty.api_key: ")
    assert '"env:" must be followed by the name of an environment variable' in message
    assert "environment variable  is" not in message
    with pytest.raises(ConfigError, match="'HARBOUR GLU' is not an environment variable name"):
        parse_tenants(with_change(["tenants", "harbour-hotels", "loyalty", "api_key"], "env:HARBOUR GLU"))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:6379/0", "schemes"),
        ("127.0.0.1:6379", "schemes"),
        ("redis://127.0.0.1:port/0", "Port could not be cast"),
        ("redis://127.0.0.1:99999/0", "Port out of range"),
        ("redis://[::1/0", "Invalid IPv6 URL"),
    ],
)
def test_an_unusable_redis_url_is_a_configuration_error_with_the_tenants_problems(tmp_path, monkeypatch, url, message):
    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.a]\ntimezone = "Mars/Olympus"\n')
    monkeypatch.setenv("CONNECTOR_TENANTS_FILE", str(path))
    monkeypatch.setenv("REDIS_URL", url)
    with pytest.raises(ConfigProblemsError) as caught:
        load_settings()
    problems = caught.value.problems
    assert any(p.startswith("REDIS_URL: ") and message in p for p in problems), problems
    assert any(p.startswith("tenants.a.timezone") for p in problems), problems  # same pass
    assert any(p.startswith("tenants.a.loyalty: Field required") for p in problems), problems


@pytest.mark.parametrize(
    "secret",
    ["whsec_not base64!", "whsec_", "whsec_a", "whsec_c2VjcmV0=c2VjcmV0", "not-whsec-at-all!"],
)
def test_a_malformed_standard_webhooks_secret_fails_at_load_without_showing_it(secret):
    document = with_change(
        ["tenants", "harbour-hotels", "sources"], {"standard": {"secrets": ["whsec_" + "QUJD" * 8, secret]}}
    )
    with pytest.raises(ConfigError) as caught:
        parse_tenants(document)
    message = str(caught.value)
    assert message.startswith("tenants.harbour-hotels.sources.standard.secrets: ")
    assert "secret 1 is not a Standard Webhooks secret" in message
    assert secret not in message.replace("expected whsec_", "")  # the secret is never shown


def test_well_formed_standard_webhooks_secrets_load():
    import base64

    padded = "whsec_" + base64.b64encode(b"a-key-of-some-length").decode()
    unpadded = padded.rstrip("=")
    bare = base64.b64encode(b"another key").decode()
    document = with_change(
        ["tenants", "harbour-hotels", "sources"], {"standard": {"secrets": [padded, unpadded, bare, ""]}}
    )
    assert len(parse_tenants(document)["harbour-hotels"].sources["standard"].secrets) == 4
