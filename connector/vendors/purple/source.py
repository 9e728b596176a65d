"""Purple (purple.ai) guest Wi-Fi logins → "Connected to wifi".

Vendor docs: https://support.purple.ai/ "Webhooks" (venue → Webhooks tab to add and validate the
URL; a Webhook action node in an online LogicFlow attached to the Access Journey posts JSON on
every login).

* Signing: none documented. The URL carries a secret token,
  ``/webhooks/<tenant>/purple/<token>`` (tenant key ``token``), compared in constant time.
* Every answer — accepted, duplicate, ignored, errors and the validation request — carries the
  response header ``wifiWebhookListener: 1``, which Purple's URL validation checks for
  (:attr:`PurpleSource.response_headers`). A validation ``GET``, or a ``POST`` with an empty body or
  a JSON body without any login data, is answered ``200 {"status": "ok"}`` without a job.
* Delivery id: Purple sends none, and fires on *every* login. The login's business key
  (portal, venue, guest hash, first local date of the window) is used as the delivery id, so
  repeated logins inside the window are answered ``duplicate`` and never create a job.
* The exact JSON key names of Purple's login payload could not be verified (the docs list field
  categories only: user, venue, device). :data:`FIELDS` lists candidate paths per field; correct
  them there once a real sample is available. Marketing consent is used only when one of the
  listed flags is present.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from connector.errors import PayloadError
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
    login_from_fields,
    resolve_venue,
    text,
)

# Candidate JSON paths per field [inferred: Purple publishes field categories, not key names].
FIELDS: dict[str, tuple[str, ...]] = {
    "email": ("user.email", "visitor.email", "profile.email", "email"),
    "first_name": ("user.first_name", "user.firstName", "visitor.first_name", "first_name"),
    "last_name": ("user.last_name", "user.lastName", "visitor.last_name", "last_name"),
    "phone": ("user.phone", "user.mobile", "visitor.phone", "phone"),
    "consent": (
        "user.marketing_opt_in",
        "user.marketing_consent",
        "user.opt_in",
        "visitor.marketing_opt_in",
        "marketing_opt_in",
    ),
    "venue_id": ("venue.id", "venue_id", "venueId", "location.id"),
    "venue_name": ("venue.name", "venue_name", "venueName", "location.name"),
    "login_at": ("timestamp", "login_time", "logged_in_at", "event.timestamp", "created_at"),
    "signup_method": ("user.signup_method", "signup_method", "login_method"),
}
LOGIN_MARKERS = ("user", "visitor", "profile", "email", "venue", "venue_id", "device")


class PurpleConfig(WifiConfig):
    """``[tenants.<t>.sources.purple]``: ``token`` plus the shared Wi-Fi settings."""

    credentials = ("token",)
    generated = ("token",)
    path_credential = "token"

    token: SecretStr


def _body(request: InboundRequest) -> Any:
    try:
        return request.json() if request.raw.strip() else None
    except BodyError:
        return None


def parse_login(payload: Any, received_at: str) -> WifiLogin:
    """The login in a Purple payload; venue id may be ``""`` (resolved against the config later).

    Raises:
        UnsupportedEvent: no email (MAC-only or anonymous login).
        PayloadError: not an object, or an unparseable timestamp.
    """
    if not isinstance(payload, dict):
        raise PayloadError("Purple payload is not a JSON object")
    return login_from_fields(
        "purple",
        payload,
        FIELDS,
        received_at,
        attributes={"signup_method": text(dig(payload, *FIELDS["signup_method"]))},
    )


class PurpleSource(LoginSource):
    """The ``purple`` source adapter."""

    name = "purple"
    config_model = PurpleConfig
    setup = SetupGuide(
        title="Purple",
        group="wifi",
        console="the Purple portal: Management > Venues > Webhooks, then LogicFlow and Access Journeys",
        steps=(
            "At company or venue level, open Management > Venues and click the Webhooks tab.",
            "Add the webhook URL above and validate it (the connector answers Purple's check).",
            "In LogicFlow, in an Online LogicFlow, place a Webhook action node after the Start node, "
            "select the validated URL, close with the End node; validate and save.",
            "Under Onboarding > Access Journeys, LogicFlow tab, click New logic flow and select that "
            "flow. Every Wi-Fi login is then posted to the connector.",
        ),
        docs="https://support.purple.ai/hc/en-gb/articles/7330833389469-Webhooks",
    )
    content_types = ("application/json", "")  # "": validation requests may carry no body at all
    response_headers = {"wifiWebhookListener": "1"}
    empty_body_is_ping = True  # the web tier asks answer_ping before rejecting an empty body as bad JSON

    def verify(self, request: InboundRequest, config: PurpleConfig) -> None:
        """The URL token, in constant time."""
        require_token(request.path_token, config.token)

    def answer_get(self, request: InboundRequest, config: PurpleConfig) -> ImmediateAnswer:
        """Purple's URL validation by ``GET``: 200 once the token matches (401 otherwise)."""
        require_token(request.path_token, config.token)
        return ImmediateAnswer(200, {"status": "ok"})

    def answer_ping(self, request: InboundRequest, config: PurpleConfig) -> ImmediateAnswer | None:
        """Validation ``POST``: an empty body or one without any login data."""
        body = _body(request)
        if body is None or (isinstance(body, dict) and not any(k in body for k in LOGIN_MARKERS)):
            return ImmediateAnswer(200, {"status": "ok"})
        return None

    def payload(self, request: InboundRequest) -> Any:
        """An empty or unparseable body is ``None`` (not a login)."""
        return _body(request)

    def logins(self, payload: Any, received_at: str, config: PurpleConfig) -> tuple[str, list[WifiLogin]]:
        """Every body is one ``login`` (venue resolved; pure)."""
        return "login", [resolve_venue(parse_login(payload, received_at), config)]


SOURCE = PurpleSource()
