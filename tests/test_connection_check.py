"""Each client's ``check_connection()`` against its sandbox (the vendor's cheapest authenticated
call, see each NOTE.md), parametrized over the registries so that a new vendor is tested for free:
ok with the sandbox's credentials, the vendor's documented refusal with wrong ones, no secret in
the answer either way."""

from __future__ import annotations

import json
from typing import Any

import pytest
from redis import Redis

from connector.esps.base import build_esp_client
from connector.esps.registry import ESPS, parse_esp
from connector.http import HttpClient
from connector.platforms.registry import PLATFORMS, parse_loyalty
from connector.sandbox.server import SandboxServer
from connector.web.merchant.forms import fields_of

REFUSALS = {"glu": 403}
"""Vendors whose documented refusal of a bad key is not 401 (Glu documents 403)."""


def wrong_credentials(table: dict[str, Any], model: Any) -> tuple[dict[str, Any], list[str]]:
    """The table with every secret replaced, and the replacements."""
    wrong = dict(table)
    used = []
    for field in fields_of(model):
        if field.secret and table.get(field.name):
            wrong[field.name] = f"wrong-{field.name}-0000"
            used.append(wrong[field.name])
    return wrong, used


def platform_client(name: str, table: dict[str, Any], redis: Redis) -> HttpClient:
    config = parse_loyalty(table, "loyalty")
    client: HttpClient = PLATFORMS[name].client.load().from_config(config, tenant="lagoon", redis=redis, timeout=5)
    return client


def esp_client(table: dict[str, Any], redis: Redis) -> HttpClient:
    return build_esp_client(parse_esp(table, "esp"), redis, timeout=5, tenant="lagoon")


def sandbox_calls(sandbox: SandboxServer, vendor: str) -> int:
    state = sandbox.sandboxes.glu.state() if vendor == "glu" else sandbox.sandboxes.extra[vendor].state()
    return int(state.get("calls", 0))


@pytest.mark.parametrize("name", sorted(PLATFORMS))
def test_each_platform_checks_its_connection(name: str, sandbox: SandboxServer, redis: Redis) -> None:
    registration = PLATFORMS[name]
    table = registration.sandbox.load().tenant_table(sandbox.url)
    good = platform_client(name, table, redis).check_connection()
    assert good["ok"] and good["checked"] and good["status"] == 200, good
    assert good["latency_ms"] >= 0 and good["said"]

    wrong, secrets = wrong_credentials(table, registration.config)
    assert secrets, f"{name}: its sandbox table holds no secret to get wrong"
    refused = platform_client(name, wrong, redis).check_connection()
    assert not refused["ok"] and refused["status"] == REFUSALS.get(name, 401), refused
    assert refused["reachable"]
    text = json.dumps(refused)
    assert not any(secret in text for secret in secrets)


@pytest.mark.parametrize("name", sorted(ESPS))
def test_each_esp_checks_its_connection(name: str, sandbox: SandboxServer, redis: Redis) -> None:
    registration = ESPS[name]
    table = registration.sandbox.load().tenant_table(sandbox.url)
    client = esp_client(table, redis)
    good = client.check_connection()
    if client.check_request is None:
        # No call can test these credentials without tracking an event: nothing is sent, and the
        # answer says so (ActiveCampaign: see its NOTE.md).
        assert not good["checked"] and not good["ok"] and good["said"]
        assert sandbox_calls(sandbox, name) == 0
        return
    assert good["ok"] and good["checked"] and good["status"] == 200, good
    assert good["said"]

    wrong, secrets = wrong_credentials(table, registration.config)
    assert secrets
    refused = esp_client(wrong, redis).check_connection()
    assert not refused["ok"] and refused["status"] == 401, refused
    assert json.loads(refused["body"])  # the vendor's JSON error body, kept for the page
    text = json.dumps(refused)
    assert not any(secret in text for secret in secrets)


def test_an_unreachable_platform_is_said_so(redis: Redis) -> None:
    table = {"platform": "glu", "base_url": "http://127.0.0.1:9", "api_key": "a-key-of-some-length"}
    answer = platform_client("glu", table, redis).check_connection()
    assert not answer["ok"] and answer["status"] is None and not answer["reachable"]
    assert "a-key-of-some-length" not in json.dumps(answer)


def test_a_wrong_base_url_is_a_404(sandbox: SandboxServer, redis: Redis) -> None:
    table = {"platform": "glu", "base_url": f"{sandbox.url}/nowhere", "api_key": "sandbox-glu-key"}
    answer = platform_client("glu", table, redis).check_connection()
    assert not answer["ok"] and answer["status"] == 404
