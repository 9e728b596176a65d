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

import json
from json.decoder import scanstring  # type: ignore[attr-defined]  # public in CPython, absent from typeshed
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
from connector.sources.setup import SetupGuide
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

    credentials = ("secret",)
    generated = ("secret",)

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


_WS = " \t\n\r"


def without_secret(text: str) -> str:
    """The body text with every top-level ``"secret"`` member cut out, every other byte kept.

    The secret authenticates the post and is then of no use; the stored job (shown in the
    dashboard) must not hold it. The text is cut, not re-serialized, so the payload the worker
    reads is exactly what Meraki sent minus that member. A text that is not a JSON object is
    returned as it is (the web tier has already refused it).
    """
    decoder = json.JSONDecoder()
    start = len(text) - len(text.lstrip(_WS + "\ufeff"))
    if text[start : start + 1] != "{":
        return text
    spans: list[tuple[int, int]] = []  # (start of the member, start of the next one or of "}")
    index = start + 1
    try:
        while True:
            member = index
            while text[index] in _WS:
                index += 1
            if text[index] == "}":
                break
            key, index = scanstring(text, index + 1)
            while text[index] in _WS:
                index += 1
            index += 1  # the colon
            while text[index] in _WS:
                index += 1
            _, index = decoder.raw_decode(text, index)
            while text[index] in _WS:
                index += 1
            last = text[index] == "}"
            if not last:
                index += 1  # the comma
            if key == "secret":
                spans.append((member, index))
            if last:
                break
    except (ValueError, IndexError, RecursionError):
        return text
    if not spans:
        return text
    kept: list[str] = []
    cursor = 0
    for begin, end in spans:
        kept.append(text[cursor:begin])
        cursor = end
    kept.append(text[cursor:])
    result = "".join(kept)
    # Cutting the last member leaves the comma before it: drop that one (whitespace kept).
    stripped = result.rstrip(_WS)
    if stripped.endswith("}"):
        body = stripped[:-1].rstrip(_WS)
        if body.endswith(","):
            cut = len(body) - 1
            result = result[:cut] + result[cut + 1 :]
    return result


class MerakiSource(LoginSource):
    """The ``meraki`` source adapter."""

    name = "meraki"
    config_model = MerakiConfig
    setup = SetupGuide(
        title="Cisco Meraki",
        group="wifi",
        console="the Meraki dashboard: Network-wide > General, Location and scanning",
        steps=(
            "In the Meraki dashboard open Network-wide > General and, under Location and scanning, "
            "enable Analytics and the Scanning API.",
            "Copy the Validator Meraki shows into Validator here and save: Meraki checks it with a GET "
            "before it posts anything.",
            "Add a Post URL: the webhook URL above; Secret: the secret the connector generated (shown "
            "once, when you add or rotate this source); API version V3; radio type WiFi.",
            "Meraki then posts every minute; guests Meraki knows by e-mail become 'Connected to wifi'.",
        ),
        docs="https://developer.cisco.com/meraki/scanning-api/",
        unverified="The dashboard's menu path and the labels Post URL, Secret, API version and radio type.",
    )
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

    def stored_body(self, text: str, config: MerakiConfig) -> str:
        """What the job keeps of a verified post: everything but the shared ``secret``."""
        return without_secret(text)

    def logins(self, payload: Any, received_at: str, config: MerakiConfig) -> tuple[str, list[WifiLogin]]:
        """Event ``observations``: the known guests of the post (pure)."""
        return "observations", parse_logins(payload, received_at)


SOURCE = MerakiSource()
