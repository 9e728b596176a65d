"""Cisco Meraki Scanning API v3 → "Connected to wifi" for guests Meraki knows by email.

Vendor docs: https://developer.cisco.com/meraki/scanning-api/ (overview; "3.0" payload page).

* Set-up handshake: Meraki first sends ``GET`` to the receiver URL and expects the network's
  **validator** string as the plain-text body (tenant key ``validator``; :meth:`answer_get`).
* Signing: none. Each ``POST`` carries the shared ``secret`` **inside the JSON body**
  (tenant key ``secret``), compared in constant time; a body without one (or not JSON) cannot be
  authenticated and is answered 401.
* Body: ``{"version": "3.0", "secret": "…", "type": "WiFi" | "BLE", "data": {"networkId": "…",
  "observations": [{"clientMac", "ssid", "userId", "latestRecord": {"time"}, "locations": […]}]}}``.
  Only ``WiFi`` posts of version 3 are used (others: ``ignored``).
* Observations are presence, not portal logins. One whose ``userId`` is an email address becomes
  a "Connected to wifi" at venue ``networkId`` (``latestRecord.time``); the rest are anonymous
  presence: a post with no known guest is answered ``ignored`` (counter ``anonymous_presence``)
  and creates no job. MAC addresses are never used as identities, keys or logged.
* Delivery id: none is sent; the set of the post's login business keys is used, so the
  minute-by-minute posts of guests still present inside the window are answered ``duplicate``.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from connector.activities import normalise_email
from connector.errors import PayloadError, SignatureError, UnsupportedEvent
from connector.sources.base import (
    BodyError,
    ImmediateAnswer,
    InboundRequest,
    require_token,
)
from connector.sources.wifi import (
    LoginSource,
    WifiConfig,
    WifiLogin,
    dig,
    is_mac,
    login_time,
    text,
)


class MerakiConfig(WifiConfig):
    """``[tenants.<t>.sources.meraki]``: ``validator``, ``secret`` and the shared Wi-Fi settings."""

    validator: str
    secret: SecretStr


def _observation_time(observation: dict[str, Any]) -> Any:
    latest = dig(observation, "latestRecord.time")
    if latest is not None:
        return latest
    locations = observation.get("locations")
    if isinstance(locations, list) and locations and isinstance(locations[-1], dict):
        return locations[-1].get("time")
    return None


def parse_logins(payload: Any, received_at: str) -> list[WifiLogin]:
    """The known guests of a v3 WiFi post.

    Raises:
        UnsupportedEvent: not a v3 WiFi post, or no observation with an email ``userId``.
        PayloadError: no ``networkId`` / ``observations``.
    """
    if not isinstance(payload, dict):
        raise PayloadError("Meraki payload is not a JSON object")
    version = str(payload.get("version", ""))
    if not version.startswith("3"):
        raise UnsupportedEvent(
            f"Scanning API version {version or '?'} is not supported (use 3.0)", counter="unsupported_version"
        )
    if payload.get("type") != "WiFi":
        raise UnsupportedEvent(f"{payload.get('type')} observations are not Wi-Fi logins", counter="not_wifi")
    data = payload.get("data")
    network = text(dig(data, "networkId"))
    observations = dig(data, "observations")
    if not network or not isinstance(observations, list):
        raise PayloadError("data.networkId / data.observations missing")
    logins = []
    for observation in observations:
        if not isinstance(observation, dict):
            continue
        user = observation.get("userId")
        email = normalise_email(user) if isinstance(user, str) and not is_mac(user) else None
        if email is None:
            continue
        logins.append(
            WifiLogin(
                portal="meraki",
                venue_id=network,
                email=email,
                login_at=login_time(_observation_time(observation), received_at, field_name="latestRecord.time"),
                attributes={"ssid": text(observation.get("ssid"))},
            )
        )
    if not logins:
        raise UnsupportedEvent(
            f"{len(observations)} observation(s), none with a known email: anonymous presence",
            counter="anonymous_presence",
        )
    return logins


class MerakiSource(LoginSource):
    """The ``meraki`` source adapter."""

    name = "meraki"
    config_model = MerakiConfig
    content_types = ("application/json",)

    def answer_get(self, request: InboundRequest, config: MerakiConfig) -> ImmediateAnswer:
        """The validator string, as plain text."""
        return ImmediateAnswer(200, config.validator, content_type="text/plain")

    def verify(self, request: InboundRequest, config: MerakiConfig) -> None:
        """The ``secret`` inside the JSON body, in constant time."""
        try:
            body = request.json()
        except BodyError as exc:  # not JSON, or nested too deep: no secret can be found
            raise SignatureError(f"{exc}, so its secret cannot be checked") from None
        given = body.get("secret") if isinstance(body, dict) else None
        if not isinstance(given, str):
            raise SignatureError("body carries no secret")
        require_token(given, config.secret)

    def logins(self, payload: Any, received_at: str, config: MerakiConfig) -> tuple[str, list[WifiLogin]]:
        """Event ``observations``: the known guests of the post (pure)."""
        return "observations", parse_logins(payload, received_at)


SOURCE = MerakiSource()
