"""HotspotSystem's underscore signature header through the real gunicorn with the repo's config."""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import load_fixture
from stack_helpers import gunicorn_server
from wifi_support import hotspot_signature, ingest_count, wifi_tenants_toml

from connector.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def gunicorn(request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, redis: object) -> Iterator[int]:
    """gunicorn -c config/gunicorn.conf.py wsgi:app on a free port; yields the port.

    ``@pytest.mark.parametrize("gunicorn", [<FORWARDED_ALLOW_IPS>], indirect=True)`` changes
    which peers gunicorn trusts (default: 127.0.0.1,::1, i.e. this test).
    """
    port = free_port()
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(wifi_tenants_toml("http://127.0.0.1:9"))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": redis_url,
        "CONNECTOR_TENANTS_FILE": str(tenants),
        "CONNECTOR_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
    }
    env.pop("FORWARDED_ALLOW_IPS", None)
    if getattr(request, "param", None):
        env["FORWARDED_ALLOW_IPS"] = request.param
    with gunicorn_server(env):
        yield port


def _post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request(
        "POST", "/webhooks/harbour/hotspotsystem", body=body, headers={"Content-Type": "application/json", **headers}
    )
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def _body(email: str) -> bytes:
    body = json.loads(load_fixture("hotspotsystem", "customer_create"))
    body["email"] = email
    return json.dumps(body).encode()


def test_underscore_signature_header_arrives_and_verifies(gunicorn, redis):
    literal = _body("annie.easley@example.com")
    status, answer = _post(gunicorn, literal, {"HTTP_X_HOTSPOTSYSTEM_HMAC_SHA256": hotspot_signature(literal)})
    assert (status, answer["status"]) == (202, "accepted")

    short = _body("hedy.lamarr@example.com")
    status, answer = _post(gunicorn, short, {"X_HOTSPOTSYSTEM_HMAC_SHA256": hotspot_signature(short)})
    assert (status, answer["status"]) == (202, "accepted")

    forged = _body("mallory@example.com")
    status, answer = _post(gunicorn, forged, {"X_HOTSPOTSYSTEM_HMAC_SHA256": hotspot_signature(forged, "guess")})
    assert status == 401
    # a dash twin cannot smuggle a second value in: gunicorn joins both, which never verifies
    status, _ = _post(
        gunicorn,
        forged,
        {
            "X_HOTSPOTSYSTEM_HMAC_SHA256": hotspot_signature(forged, "guess"),
            "X-HotspotSystem-Hmac-Sha256": hotspot_signature(short),
        },
    )
    assert status == 401
    assert ingest_count(redis) == 2


@pytest.mark.parametrize("gunicorn", ["10.9.9.9"], indirect=True)
def test_underscore_header_from_an_untrusted_peer_is_dropped(gunicorn, redis):
    # Not from the trusted front end: gunicorn's default (drop) applies, so the signature never
    # reaches the app and the request is refused.
    body = _body("annie.easley@example.com")
    status, answer = _post(gunicorn, body, {"X_HOTSPOTSYSTEM_HMAC_SHA256": hotspot_signature(body)})
    assert status == 401
    assert "missing signature" in json.dumps(answer)
    # the dash spelling is an ordinary header and always arrives
    status, _ = _post(gunicorn, body, {"X-HotspotSystem-Hmac-Sha256": hotspot_signature(body)})
    assert status == 202
    assert ingest_count(redis) == 1
