"""Cloudbeds PMS API v1.2 credentials: an API key goes in ``x-api-key``, an OAuth token in ``Bearer``.

Cloudbeds' OpenAPI (cloudbeds/openapi-specs, src/pms-v1.2-openapi.yaml) declares two security
schemes: ``api_key`` (``type: apiKey``, ``in: header``, ``name: x-api-key``) and ``OAuth2``.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
import requests
from conftest import load_fixture
from pms_helpers import CLOUDBEDS_TOKEN, fixture_json, glu_activities, pms_toml

from connector.errors import ConfigError
from connector.sandbox.server import DEFAULT_KEYS
from connector.settings import load_settings
from connector.web import create_app

API_KEY = DEFAULT_KEYS["cloudbeds"]
OAUTH_TOKEN = "sandbox-cloudbeds-access-token"  # the sandbox default OAuth token


def get_reservation(sandbox: Any, headers: dict[str, str]) -> requests.Response:
    return requests.get(
        f"{sandbox.url}/cloudbeds/getReservation", params={"reservationID": "7061304407766"}, headers=headers, timeout=5
    )


def test_sandbox_takes_the_api_key_in_x_api_key(sandbox):
    sandbox.sandboxes.extra["cloudbeds"].seed(fixture_json("cloudbeds", "reservation_confirmed"))
    response = get_reservation(sandbox, {"x-api-key": API_KEY})
    assert response.status_code == 200
    assert response.json()["success"] is True
    assert response.json()["data"]["reservationID"] == "7061304407766"


def test_sandbox_refuses_an_api_key_sent_as_bearer(sandbox):
    sandbox.sandboxes.extra["cloudbeds"].seed(fixture_json("cloudbeds", "reservation_confirmed"))
    response = get_reservation(sandbox, {"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 401
    assert response.json()["success"] is False
    assert response.json()["message"]
    assert "data" not in response.json()


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-api-key": "wrong"}, {"Authorization": "Bearer wrong"}, {"x-api-key": OAUTH_TOKEN}],
    ids=["none", "wrong-key", "wrong-token", "token-as-key"],
)
def test_sandbox_refuses_other_credentials(sandbox, headers):
    response = get_reservation(sandbox, headers)
    assert response.status_code == 401
    assert response.json()["success"] is False


def test_sandbox_takes_an_oauth_token_as_bearer(sandbox):
    sandbox.sandboxes.extra["cloudbeds"].seed(fixture_json("cloudbeds", "reservation_confirmed"))
    response = get_reservation(sandbox, {"Authorization": f"Bearer {OAUTH_TOKEN}"})
    assert response.status_code == 200
    assert response.json()["success"] is True


def _deliver_stay(env: Any, sandbox: Any, work: Any, toml: str) -> list[dict[str, Any]]:
    client = create_app(env(toml, TEST_MEWS_ACCESS_TOKEN="x")).test_client()
    sandbox.sandboxes.extra["cloudbeds"].seed(fixture_json("cloudbeds", "reservation_confirmed"))
    response = client.post(
        f"/webhooks/harbour/cloudbeds/{CLOUDBEDS_TOKEN}",
        data=load_fixture("cloudbeds", "reservation_created"),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 202
    work()
    return glu_activities(sandbox)


def test_api_key_is_sent_as_x_api_key_and_the_stay_is_delivered(env, sandbox, work):
    activities = _deliver_stay(env, sandbox, work, pms_toml(sandbox.url))
    assert [a["type"] for a in activities] == ["Booking"]
    assert activities[0]["externalReference"] == "cloudbeds:318267:7061304407766"
    assert sandbox.sandboxes.extra["cloudbeds"].state()["auth"] == ["x-api-key"]


def test_access_token_is_sent_as_bearer_and_the_stay_is_delivered(env, sandbox, work):
    toml = pms_toml(sandbox.url).replace(
        'api_key = "sandbox-cloudbeds-key"', 'access_token = "env:TEST_CLOUDBEDS_TOKEN"'
    )
    client = create_app(env(toml, TEST_MEWS_ACCESS_TOKEN="x", TEST_CLOUDBEDS_TOKEN=OAUTH_TOKEN)).test_client()
    sandbox.sandboxes.extra["cloudbeds"].seed(fixture_json("cloudbeds", "reservation_confirmed"))
    response = client.post(
        f"/webhooks/harbour/cloudbeds/{CLOUDBEDS_TOKEN}",
        data=load_fixture("cloudbeds", "reservation_created"),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 202
    work()
    assert [a["type"] for a in glu_activities(sandbox)] == ["Booking"]
    assert sandbox.sandboxes.extra["cloudbeds"].state()["auth"] == ["bearer"]


CLOUDBEDS_TABLE = textwrap.dedent(f"""
    [tenants.harbour.sources.cloudbeds]
    token = "{CLOUDBEDS_TOKEN}"
    api_url = "http://127.0.0.1:1/cloudbeds"
""")


@pytest.mark.parametrize(
    "credentials",
    ['api_key = "k"\naccess_token = "t"\n', ""],
    ids=["both", "neither"],
)
def test_exactly_one_credential_is_a_clear_config_error(tmp_path, monkeypatch, credentials):
    path = tmp_path / "tenants.toml"
    path.write_text(
        textwrap.dedent("""
            [tenants.harbour]
            timezone = "Europe/London"
            [tenants.harbour.loyalty]
            platform = "glu"
            base_url = "http://127.0.0.1:1/glu"
            api_key = "g"
        """)
        + CLOUDBEDS_TABLE
        + credentials
    )
    monkeypatch.setenv("CONNECTOR_TENANTS_FILE", str(path))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "tenants.harbour.sources.cloudbeds" in message
    assert "exactly one of api_key" in message and "access_token" in message
    assert '"k"' not in message and "'t'" not in message  # no secret values in the error
