"""Wi-Fi sources end to end: real Redis, the Flask app, burst RQ workers and the Glu sandbox over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from conftest import load_fixture
from wifi_support import (
    HOTSPOT_KEY,
    MARINA_PURPLE_TOKEN,
    MERAKI_VALIDATOR,
    PURPLE_TOKEN,
    SOCIALWIFI_AUTH,
    hotspot_signature,
    ingest_count,
    mist_headers,
    purple_login,
    standard_headers,
    wifi_tenants_toml,
)

from connector import metrics
from connector.activities import hash_identifier
from connector.erasure import erasure_key
from connector.queue import DELIVERY_QUEUE, INGEST_QUEUE, get_queue
from connector.settings import Settings
from connector.web import create_app

JSON = {"Content-Type": "application/json"}
LISTENER = "wifiWebhookListener"


@pytest.fixture
def wifi(env: Callable[..., Settings], sandbox: Any) -> Any:
    """Flask test client on the Wi-Fi tenants."""
    return create_app(env(toml=wifi_tenants_toml(sandbox.url))).test_client()


def purple(client: Any, body: bytes, token: str = PURPLE_TOKEN, **headers: str) -> Any:
    return client.post(f"/webhooks/harbour/purple/{token}", data=body, headers={**JSON, **headers})


def glu(sandbox: Any) -> dict[str, Any]:
    return sandbox.sandboxes.glu.state()  # type: ignore[no-any-return]


def counters(redis: Any) -> dict[str, int]:
    return metrics.read_counters(redis)


# --- the window ------------------------------------------------------------------------------------


def test_one_activity_per_guest_venue_and_local_day(wifi, sandbox, redis, work):
    times = ["08:01:00", "09:12:41", "12:30:00", "18:45:10", "23:59:59"]
    answers = [purple(wifi, purple_login(timestamp=f"2026-11-25T{t}+00:00")) for t in times]
    assert [a.status_code for a in answers] == [202, 200, 200, 200, 200]
    assert [a.json["status"] for a in answers] == ["accepted"] + ["duplicate"] * 4
    assert all(a.headers[LISTENER] == "1" for a in answers)
    assert ingest_count(redis) == 1  # reconnects never became jobs
    work()
    assert len(glu(sandbox)["activities"]) == 1

    next_day = purple(wifi, purple_login(timestamp="2026-11-26T07:30:00+00:00"))
    other_venue = purple(wifi, purple_login(venue="harbour-spa", timestamp="2026-11-25T10:00:00+00:00"))
    assert (next_day.status_code, other_venue.status_code) == (202, 202)
    work()
    state = glu(sandbox)
    guest = hash_identifier("ada.lovelace@example.com")
    assert sorted(a["externalReference"] for a in state["activities"]) == [
        f"purple:harbour-lobby:{guest}:2026-11-25",
        f"purple:harbour-lobby:{guest}:2026-11-26",
        f"purple:harbour-spa:{guest}:2026-11-25",
    ]
    assert {a["type"] for a in state["activities"]} == {"Connected to wifi"}
    assert {a["source"] for a in state["activities"]} == {"purple"}
    assert len(state["contacts"]) == 1
    assert state["contacts"][0]["emailAddress"] == "ada.lovelace@example.com"
    first = next(a for a in state["activities"] if a["externalReference"] == f"purple:harbour-lobby:{guest}:2026-11-25")
    assert first["happenedAt"] == "2026-11-25T08:01:00+00:00"


def test_local_day_follows_the_venue_timezone(wifi, sandbox, work):
    # 14:30 and 15:30 UTC are the same London day but 23:30 and 00:30 in Tokyo: two local days
    a = purple(wifi, purple_login(venue="harbour-tokyo", timestamp="2026-11-25T14:30:00+00:00"))  # 23:30 JST
    b = purple(wifi, purple_login(venue="harbour-tokyo", timestamp="2026-11-25T15:30:00+00:00"))  # 00:30 JST next day
    assert (a.json["status"], b.json["status"]) == ("accepted", "accepted")
    work()
    dates = sorted(x["externalReference"].rsplit(":", 1)[1] for x in glu(sandbox)["activities"])
    assert dates == ["2026-11-25", "2026-11-26"]
    assert sorted(x["happenedAt"] for x in glu(sandbox)["activities"]) == [
        "2026-11-25T23:30:00+09:00",
        "2026-11-26T00:30:00+09:00",
    ]


def test_week_window_is_a_source_setting(env, sandbox, redis, work):
    client = create_app(env(toml=wifi_tenants_toml(sandbox.url, window="week"))).test_client()
    days = ["2026-11-23", "2026-11-25", "2026-11-29", "2026-11-30"]  # Mon, Wed, Sun, next Mon
    statuses = [purple(client, purple_login(timestamp=f"{d}T12:00:00+00:00")).json["status"] for d in days]
    assert statuses == ["accepted", "duplicate", "duplicate", "accepted"]
    work()
    assert sorted(a["externalReference"][-10:] for a in glu(sandbox)["activities"]) == ["2026-11-23", "2026-11-30"]


# --- purple answers --------------------------------------------------------------------------------


def test_every_purple_answer_carries_the_listener_header(wifi, redis):
    login = load_fixture("purple", "login")
    answers = {
        "validation GET": (wifi.get(f"/webhooks/harbour/purple/{PURPLE_TOKEN}"), 200),
        "validation empty POST": (wifi.post(f"/webhooks/harbour/purple/{PURPLE_TOKEN}", data=b""), 200),
        "validation JSON POST": (purple(wifi, load_fixture("purple", "validation")), 200),
        "GET bad token": (wifi.get("/webhooks/harbour/purple/wrong"), 401),
        "bad token": (purple(wifi, login, token="wrong"), 401),
        "no token": (wifi.post("/webhooks/harbour/purple", data=login, headers=JSON), 401),
        "bad JSON": (purple(wifi, b"{not json"), 400),
        "wrong content type": (
            wifi.post(f"/webhooks/harbour/purple/{PURPLE_TOKEN}", data=login, headers={"Content-Type": "text/plain"}),
            415,
        ),
        "too large": (purple(wifi, b"{" + b" " * (1024 * 1024 + 10) + b"}"), 413),
        "MAC-only": (purple(wifi, load_fixture("purple", "login_mac_only")), 200),
        "accepted": (purple(wifi, login), 202),
        "duplicate": (purple(wifi, login), 200),
        "PUT": (wifi.put(f"/webhooks/harbour/purple/{PURPLE_TOKEN}", data=login, headers=JSON), 405),
    }
    for name, (response, status) in answers.items():
        assert response.status_code == status, name
        assert response.headers.get(LISTENER) == "1", name
    assert answers["MAC-only"][0].json["status"] == "ignored"
    assert answers["validation GET"][0].json == {"status": "ok"}
    assert ingest_count(redis) == 1


def test_mac_only_guests_are_ignored_counted_and_never_in_key_names(wifi, redis):
    answer = purple(wifi, load_fixture("purple", "login_mac_only"))
    assert answer.json["status"] == "ignored"
    assert "8a:41" not in answer.get_data(as_text=True)
    assert counters(redis)["ignored|reason=no_email|source=purple|tenant=harbour"] == 1
    purple(wifi, load_fixture("purple", "login"))
    for key in redis.keys("*"):
        name = key.decode().lower()
        assert "8a:41:07" not in name and "3c:22:fb" not in name and "lovelace" not in name


def test_tenants_are_isolated(wifi, redis):
    assert purple(wifi, load_fixture("purple", "login"), token=MARINA_PURPLE_TOKEN).status_code == 401
    other = wifi.post(f"/webhooks/marina/purple/{PURPLE_TOKEN}", data=load_fixture("purple", "login"), headers=JSON)
    assert other.status_code == 401
    assert ingest_count(redis) == 0


# --- authentication failures: 401 and no job -------------------------------------------------------


def _auth_failures() -> list[tuple[str, str, Callable[[], tuple[bytes, dict[str, str]]]]]:
    meraki = load_fixture("meraki", "observations")
    wrong_secret = json.dumps({**json.loads(meraki), "secret": "guess"}).encode()
    no_secret = json.dumps({k: v for k, v in json.loads(meraki).items() if k != "secret"}).encode()
    mist = load_fixture("mist", "guest_authorizations")
    v1_only = {k: v for k, v in mist_headers(mist).items() if k != "X-Mist-Signature-v2"}
    hotspot = load_fixture("hotspotsystem", "customer_create")
    standard = load_fixture("standard", "wifi_login")
    return [
        ("purple", "/webhooks/harbour/purple/wrong-token", lambda: (load_fixture("purple", "login"), JSON)),
        ("purple", "/webhooks/harbour/purple", lambda: (load_fixture("purple", "login"), JSON)),
        ("purple", f"/webhooks/harbour/purple/{MARINA_PURPLE_TOKEN}", lambda: (load_fixture("purple", "login"), JSON)),
        ("meraki", "/webhooks/harbour/meraki", lambda: (wrong_secret, JSON)),
        ("meraki", "/webhooks/harbour/meraki", lambda: (no_secret, JSON)),
        ("meraki", "/webhooks/harbour/meraki", lambda: (b"not json", JSON)),
        ("socialwifi", "/webhooks/harbour/socialwifi", lambda: (load_fixture("socialwifi", "upsert"), JSON)),
        (
            "socialwifi",
            "/webhooks/harbour/socialwifi",
            lambda: (load_fixture("socialwifi", "upsert"), {**JSON, "Authorization": "Bearer wrong"}),
        ),
        ("mist", "/webhooks/harbour/mist", lambda: (mist, JSON)),
        ("mist", "/webhooks/harbour/mist", lambda: (mist, mist_headers(mist, "wrong-secret"))),
        ("mist", "/webhooks/harbour/mist", lambda: (mist, v1_only)),
        ("mist", "/webhooks/harbour/mist", lambda: (mist.replace(b"dorothy", b"mallory"), mist_headers(mist))),
        ("hotspotsystem", "/webhooks/harbour/hotspotsystem", lambda: (hotspot, JSON)),
        (
            "hotspotsystem",
            "/webhooks/harbour/hotspotsystem",
            lambda: (hotspot, {**JSON, "X-HotspotSystem-Hmac-Sha256": hotspot_signature(hotspot, "wrong-key")}),
        ),
        (
            "hotspotsystem",
            "/webhooks/harbour/hotspotsystem",
            lambda: (hotspot, {**JSON, "X-HotspotSystem-Hmac-Sha256": "%%%"}),
        ),
        (
            "standard",
            "/webhooks/harbour/standard",
            lambda: (standard, standard_headers(standard, secret="whsec_" + "d3Jvbmc=" * 4)),
        ),
        ("standard", "/webhooks/harbour/standard", lambda: (standard, standard_headers(standard, timestamp=1))),
    ]


@pytest.mark.parametrize(
    ("source", "path", "make"), _auth_failures(), ids=[f"{s}-{i}" for i, (s, _, _) in enumerate(_auth_failures())]
)
def test_authentication_failures_answer_401_and_create_no_job(wifi, redis, source, path, make):
    body, headers = make()
    response = wifi.post(path, data=body, headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_signature"
    assert ingest_count(redis) == 0
    assert not redis.keys("connector:seen:*")


# --- meraki ----------------------------------------------------------------------------------------


def test_meraki_validator_and_observations(wifi, sandbox, redis, work):
    validation = wifi.get("/webhooks/harbour/meraki")
    assert validation.status_code == 200
    assert validation.get_data(as_text=True) == MERAKI_VALIDATOR
    assert validation.mimetype == "text/plain"

    body = load_fixture("meraki", "observations")
    assert wifi.post("/webhooks/harbour/meraki", data=body, headers=JSON).json["status"] == "accepted"
    # a minute later the guest is still there: same guests, same day → duplicate
    later = json.loads(body)
    later["data"]["observations"][0]["latestRecord"]["time"] = "2026-11-25T18:42:10Z"
    assert wifi.post("/webhooks/harbour/meraki", data=json.dumps(later), headers=JSON).json["status"] == "duplicate"
    anonymous = wifi.post(
        "/webhooks/harbour/meraki", data=load_fixture("meraki", "observations_anonymous"), headers=JSON
    )
    assert anonymous.status_code == 200 and anonymous.json["status"] == "ignored"
    assert counters(redis)["ignored|reason=anonymous_presence|source=meraki|tenant=harbour"] == 1
    work()
    [activity] = glu(sandbox)["activities"]
    assert activity["externalReference"].startswith("meraki:N_24329156:")
    assert glu(sandbox)["contacts"][0]["emailAddress"] == "grace.hopper@example.com"


# --- social wifi -----------------------------------------------------------------------------------


def test_socialwifi_upsert_then_delete_erases(wifi, sandbox, redis, work):
    auth = {**JSON, "Authorization": SOCIALWIFI_AUTH}
    upsert = wifi.post("/webhooks/harbour/socialwifi", data=load_fixture("socialwifi", "upsert"), headers=auth)
    assert upsert.status_code == 202
    assert (
        wifi.post("/webhooks/harbour/socialwifi", data=load_fixture("socialwifi", "upsert"), headers=auth).json[
            "status"
        ]
        == "duplicate"
    )
    work()
    assert len(glu(sandbox)["activities"]) == 1
    guest = hash_identifier("mary.jackson@example.com")
    assert redis.exists(f"connector:contact:harbour:glu:{guest}")

    delete = wifi.post("/webhooks/harbour/socialwifi", data=load_fixture("socialwifi", "delete"), headers=auth)
    assert delete.status_code == 202
    work()
    assert not redis.keys(f"connector:contact:harbour:*:{guest}")
    record = json.loads(redis.get(erasure_key("harbour", guest)))
    assert record["source"] == "socialwifi"
    assert record["contacts_forgotten"] == 1
    assert record["jobs_deleted"] >= 2  # upsert ingest (it delivered itself, issue 16), the delete ingest
    assert counters(redis)["erasures|source=socialwifi|tenant=harbour"] == 1
    for name in (INGEST_QUEUE, DELIVERY_QUEUE):
        queue = get_queue(redis, name)
        for job_id in queue.finished_job_registry.get_job_ids() + queue.failed_job_registry.get_job_ids():
            assert "mary.jackson" not in json.dumps(queue.fetch_job(job_id).args)
    # nothing about the guest remains in Redis in the clear
    for key in redis.keys("*"):
        assert b"mary" not in key
        if redis.type(key) == b"string":
            assert b"mary.jackson" not in (redis.get(key) or b"")


# --- mist, hotspotsystem, standard -----------------------------------------------------------------


def test_mist_guest_authorization(wifi, sandbox, work):
    body = load_fixture("mist", "guest_authorizations")
    assert wifi.post("/webhooks/harbour/mist", data=body, headers=mist_headers(body)).status_code == 202
    assert wifi.post("/webhooks/harbour/mist", data=body, headers=mist_headers(body)).json["status"] == "duplicate"
    join = load_fixture("mist", "client_join")
    assert wifi.post("/webhooks/harbour/mist", data=join, headers=mist_headers(join)).json["status"] == "ignored"
    work()
    [activity] = glu(sandbox)["activities"]
    assert activity["happenedAt"] == "2026-11-25T11:40:00+00:00"


@pytest.mark.parametrize("header", ["HTTP_X_HOTSPOTSYSTEM_HMAC_SHA256", "X-HotspotSystem-Hmac-Sha256"])
def test_hotspotsystem_login(wifi, sandbox, work, header):
    body = load_fixture("hotspotsystem", "customer_create")
    headers = {**JSON, header: hotspot_signature(body, HOTSPOT_KEY)}
    assert wifi.post("/webhooks/harbour/hotspotsystem", data=body, headers=headers).status_code == 202
    # HotspotSystem retries at least 20 times
    assert wifi.post("/webhooks/harbour/hotspotsystem", data=body, headers=headers).json["status"] == "duplicate"
    work()
    [activity] = glu(sandbox)["activities"]
    assert activity["externalReference"].startswith("hotspotsystem:1:")


def test_standard_wifi_login_repeats_reach_the_platform_once(wifi, sandbox, redis, work):
    body = load_fixture("standard", "wifi_login")
    again = json.loads(body)
    again["data"]["logged_in_at"] = "2026-11-25T23:30:00+00:00"  # same Tokyo day (08:30 JST)
    again_raw = json.dumps(again).encode()
    first = wifi.post("/webhooks/harbour/standard", data=body, headers=standard_headers(body, msg_id="msg_a"))
    second = wifi.post(
        "/webhooks/harbour/standard", data=again_raw, headers=standard_headers(again_raw, msg_id="msg_b")
    )
    assert (first.status_code, second.status_code) == (202, 202)  # distinct sender ids
    work()
    [activity] = glu(sandbox)["activities"]
    assert activity["externalReference"] == (
        f"unifi:marina-bar:{hash_identifier('katherine.johnson@example.com')}:2026-11-26"
    )
    assert activity["source"] == "unifi"


# --- login storm sample (used by the benchmark) ----------------------------------------------------


def test_wifi_login_storm_reaches_the_platform_once_per_guest(env, sandbox, redis, work):
    from connector.sandbox.wifi_samples import STORM_TOML, wifi_login_storm

    client = create_app(env(toml=STORM_TOML.format(glu_url=f"{sandbox.url}/glu"))).test_client()
    statuses = [
        client.post(path, data=body, headers=headers).json["status"] for path, headers, body in wifi_login_storm(6, 4)
    ]
    assert statuses.count("accepted") == 6
    assert statuses.count("duplicate") == 24
    work()
    assert len(glu(sandbox)["activities"]) == 6
    assert len({a["externalReference"] for a in glu(sandbox)["activities"]}) == 6


ODD_BODIES = [
    b"[]",
    b'"text"',
    b"null",
    b"{}",
    b"1e999",
    b'{"user": "x", "venue": []}',
    b'{"user": {"email": "a@b.co"}, "venue": {"id": {}}}',
    b'{"user": {"email": "a@b.co"}, "venue": {"id": "v"}, "timestamp": 1e300}',
    b'{"user": {"email": "a@b.co"}, "venue": {"id": "v"}, "timestamp": "0001-01-01T00:00:00+01:00"}',
    b'{"type": "Upsert", "data": {"email": "a@b.co", "venue_id": "v", "last_visit": [1]}}',
    b'{"type": ["Delete"], "data": null}',
    b'{"type": "Delete", "data": {"email": 5}}',
    b'{"version": "3.0", "type": "WiFi", "data": {"networkId": "N", "observations": [1, null, {"userId": 7}]}}',
    b'{"version": "3.0", "type": "WiFi", "data": {"networkId": "N", "observations": '
    b'[{"userId": "a@b.co", "latestRecord": {"time": "never"}}]}}',
    b'{"topic": "guest-authorizations", "events": [{"email": "a@b.co", "authorized_time": true}]}',
    b'{"topic": "guest-authorizations", "events": "none"}',
    b'{"email": "a@b.co", "registered": "2026-13-45"}',
]


@pytest.mark.parametrize("body", ODD_BODIES)
@pytest.mark.parametrize("source", ["purple", "meraki", "socialwifi", "mist", "hotspotsystem"])
def test_odd_but_authentic_bodies_never_answer_500(wifi, source, body):
    path = f"/webhooks/harbour/{source}"
    headers: dict[str, str] = dict(JSON)
    if source == "purple":
        path += f"/{PURPLE_TOKEN}"
    elif source == "meraki":
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            body = json.dumps({**parsed, "secret": "meraki-shared-secret"}).encode()
    elif source == "socialwifi":
        headers["Authorization"] = SOCIALWIFI_AUTH
    elif source == "mist":
        headers = mist_headers(body)
    else:
        headers["X-HotspotSystem-Hmac-Sha256"] = hotspot_signature(body)
    response = wifi.post(path, data=body, headers=headers)
    assert response.status_code in (200, 202, 400, 401), response.get_data(as_text=True)
    assert response.is_json


def test_redis_down_answers_503_with_the_listener_header(env, sandbox):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = env(toml=wifi_tenants_toml(sandbox.url), REDIS_URL=f"redis://127.0.0.1:{port}/0")
    response = purple(create_app(settings).test_client(), load_fixture("purple", "login"))
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.headers[LISTENER] == "1"


def test_delete_before_delivery_cancels_the_pending_activity(wifi, sandbox, redis, work):
    auth = {**JSON, "Authorization": SOCIALWIFI_AUTH}
    # The upsert's ingest job tries the delivery itself (issue 16); Glu's 503 leaves it pending
    # in the delivery queue, where the erasure finds it.
    sandbox.sandboxes.glu.faults.arm({"mode": "status", "status": 503, "count": 1})
    assert (
        wifi.post("/webhooks/harbour/socialwifi", data=load_fixture("socialwifi", "upsert"), headers=auth).status_code
        == 202
    )
    assert (
        wifi.post("/webhooks/harbour/socialwifi", data=load_fixture("socialwifi", "delete"), headers=auth).status_code
        == 202
    )
    work()  # ingest queue first: upsert → pending delivery; delete → erase_guest removes it
    assert glu(sandbox)["activities"] == []
    assert get_queue(redis, DELIVERY_QUEUE).count == 0
    record = json.loads(redis.get(erasure_key("harbour", hash_identifier("mary.jackson@example.com"))))
    assert record["contacts_forgotten"] == 0
