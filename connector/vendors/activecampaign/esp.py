"""ActiveCampaign Event Tracking client: ``POST https://trackcmp.net/event`` (form-encoded).

Docs: https://developers.activecampaign.com/reference/track-event. The account is named by the
form fields ``actid`` (``account_id``) and ``key`` (the Event Tracking key, ``event_key``);
``event`` is the name (at most 32 characters, checked at config load), ``eventdata`` a single
string and ``visit`` the JSON contact ``{"email": …}``. Event Tracking must be switched on in the
account. The answer is 200 ``{"success": 1, …}``; anything else is fatal. ``eventdata`` carries
the most useful single value of the event: the tier for tier events, the reward for reward
events, else the points or the balance. No server dedup: the relay ledger is the guard. Limit
5 req/s per account (default budget 4/s); 429 carries ``Retry-After``, and a 503 seen at the limit
is retried like every 5xx.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from connector.activities import LoyaltyEvent
from connector.esps.base import EspClient, EspReceipt
from connector.vendors.activecampaign.config import ActiveCampaignConfig


def event_data(event: LoyaltyEvent) -> str:
    """The single ``eventdata`` string."""
    for value in (event.tier, event.reward, event.points, event.balance):
        if value is not None and value != "":
            return str(value)
    return ""


def form(event: LoyaltyEvent, name: str, account_id: str, key: str) -> dict[str, str]:
    """The form fields (pure)."""
    return {
        "actid": account_id,
        "key": key,
        "event": name,
        "eventdata": event_data(event),
        "visit": json.dumps({"email": event.email}, separators=(",", ":")),
    }


class ActiveCampaignClient(EspClient):
    """ActiveCampaign (account id + event key)."""

    provider: ClassVar[str] = "activecampaign"
    # The connection check (see NOTE.md).
    check_unavailable = (
        "ActiveCampaign's Event Tracking key can only send events (POST /event): there is no call to test it "
        "without tracking one, so the connector does not test it. Compare the account id and key with "
        "Website > Site Tracking > Event Tracking in ActiveCampaign (Event Tracking must be on)."
    )

    default_rate: ClassVar[tuple[int, float]] = (4, 1.0)
    default_429_pause: ClassVar[float] = 5.0

    @classmethod
    def connection(cls, config: ActiveCampaignConfig) -> tuple[str, str, dict[str, Any]]:
        """``(base URL, account credential, keyword arguments)`` of the client for an ``[esp]`` table."""
        key = config.event_key.get_secret_value()
        return config.base_url, key, {"account_id": config.account_id, "event_key": key}

    def __init__(self, *args: Any, account_id: str, event_key: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.account_id = account_id
        self.event_key = event_key

    def send(self, event: LoyaltyEvent, name: str) -> EspReceipt:
        """Track the event; ``success`` must be 1."""
        response = self.call("POST", "/event", data=form(event, name, self.account_id, self.event_key))
        answer = self.json(response)
        if not isinstance(answer, dict) or str(answer.get("success")) != "1":
            raise self.not_accepted(response, "did not track the event", response.text)
        return EspReceipt(provider=self.provider, status=response.status_code, name=name)
