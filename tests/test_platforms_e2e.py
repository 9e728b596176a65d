"""Sources do not change with the platform: signed PMS webhooks end to end into LoyaltyLion and
Voucherify, through the real web app, Redis, burst workers and the sandboxes over HTTP."""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from conftest import load_fixture
from pms_helpers import STANDARD_SECRET, standard_headers

from connector.sandbox.server import DEFAULT_KEYS, SandboxServer
from connector.settings import Settings
from connector.web import create_app

KEY = "harbourpms:LON-1:RES-20931"


def toml(platform: str, url: str) -> str:
    loyalty = (
        f'base_url = "{url}/loyaltylion"\napi_key = "{DEFAULT_KEYS["loyaltylion"]}"'
        if platform == "loyaltylion"
        else f'base_url = "{url}/voucherify"\napp_id = "{DEFAULT_KEYS["voucherify_app_id"]}"\n'
        f'app_token = "{DEFAULT_KEYS["voucherify_app_token"]}"'
    )
    return (
        textwrap.dedent(f"""
        [tenants.harbour]
        timezone = "Europe/London"
        [tenants.harbour.sources.standard]
        secrets = ["{STANDARD_SECRET}"]
        [tenants.harbour.loyalty]
        platform = "{platform}"
        """)
        + loyalty
        + "\n"
    )


def send(client: Any, name: str, msg_id: str) -> Any:
    body = load_fixture("standard", name)
    return client.post("/webhooks/harbour/standard", data=body, headers=standard_headers(body, msg_id))


def held(sandbox: SandboxServer, platform: str) -> Counter[tuple[str, str]]:
    state = sandbox.sandboxes.extra[platform].state()
    if platform == "loyaltylion":
        return Counter((a["rule"]["name"], a["merchant_id"]) for a in state["activities"])
    return Counter((e["event"], e["metadata"]["connector_key"]) for e in state["events"])


@pytest.mark.parametrize("platform", ["loyaltylion", "voucherify"])
def test_a_stay_from_a_pms_reaches_the_platform_once_in_its_vocabulary(
    platform: str, env: Callable[..., Settings], sandbox: SandboxServer, work: Callable[..., None]
) -> None:
    client = create_app(env(toml(platform, sandbox.url))).test_client()
    for name in ("stay_booked", "stay_checked_in", "stay_checked_out"):
        assert send(client, name, f"msg_{name}").status_code == 202
    assert send(client, "stay_checked_in", "msg_stay_checked_in").json["status"] == "duplicate"
    work()
    assert send(client, "stay_checked_out", "msg_redelivered_with_new_id").status_code == 202  # a replay
    work()
    assert held(sandbox, platform) == Counter(
        {("hotel_booking", KEY): 1, ("hotel_checked_in", KEY): 1, ("hotel_checked_out", KEY): 1}
    )


@pytest.mark.parametrize("platform", ["loyaltylion", "voucherify"])
def test_a_cancellation_reverses_the_booking_in_the_platforms_terms(
    platform: str, env: Callable[..., Settings], sandbox: SandboxServer, work: Callable[..., None]
) -> None:
    client = create_app(env(toml(platform, sandbox.url))).test_client()
    assert send(client, "stay_booked", "msg_booked").status_code == 202
    work()
    assert send(client, "stay_canceled", "msg_canceled").status_code == 202
    work()
    state = sandbox.sandboxes.extra[platform].state()
    if platform == "loyaltylion":
        assert [(a["rule"]["name"], a["merchant_id"], a["state"]) for a in state["activities"]] == [
            ("hotel_booking", KEY, "void")
        ]
    else:
        assert held(sandbox, platform) == Counter(
            {("hotel_booking", KEY): 1, ("hotel_booking_status_changed", f"{KEY}:status:1"): 1}
        )
        assert state["events"][1]["metadata"]["booking_status"] == "Canceled"
