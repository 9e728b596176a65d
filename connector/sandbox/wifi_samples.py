"""Sample Wi-Fi traffic: a Purple login storm (many guests, each reconnecting many times).

:func:`wifi_login_storm` yields ``(path, headers, body)`` for ``POST`` requests against a tenant
with a ``purple`` source. Every guest logs in once and then reconnects ``reconnects`` times during
the same local day at the same venue, interleaved like real traffic, so of the
``n_guests * (1 + reconnects)`` requests exactly ``n_guests`` are ``accepted`` (one job, one
"Connected to wifi" each) and the rest are answered ``duplicate`` by the web tier.

A matching tenant is :data:`STORM_TOML` (tenant ``storm``, Europe/London, a ``purple`` source
with token ``storm-purple-token``); format it with ``glu_url``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

STORM_TENANT = "storm"
STORM_TOKEN = "storm-purple-token"  # noqa: S105 - a sandbox token, not a secret
STORM_TOML = """
[tenants.storm]
timezone = "Europe/London"
[tenants.storm.loyalty]
platform = "glu"
base_url = "{glu_url}"
api_key = "sandbox-glu-key"
[tenants.storm.sources.purple]
token = "storm-purple-token"
"""


def purple_login_body(guest: int, at: datetime, *, venue: str = "storm-lobby") -> bytes:
    """One Purple login (same shape as ``tests/fixtures/purple/login.json``)."""
    return json.dumps(
        {
            "event": "login",
            "timestamp": at.isoformat(),
            "venue": {"id": venue, "name": "Storm Hotel Lobby"},
            "user": {
                "id": 50_000_000 + guest,
                "first_name": "Guest",
                "last_name": f"{guest:06d}",
                "email": f"guest{guest:06d}@example.com",
                "signup_method": "form",
                "marketing_opt_in": guest % 2 == 0,
            },
            "device": {"mac": f"02:00:{guest >> 16 & 255:02x}:{guest >> 8 & 255:02x}:{guest & 255:02x}:01"},
        }
    ).encode()


def wifi_login_storm(
    n_guests: int,
    reconnects: int,
    *,
    tenant: str = STORM_TENANT,
    token: str = STORM_TOKEN,
    day: str = "2026-11-25",
    venue: str = "storm-lobby",
) -> Iterator[tuple[str, dict[str, str], bytes]]:
    """``n_guests * (1 + reconnects)`` Purple logins, all on one local day at one venue.

    Round ``r`` sends every guest's ``r``-th login (``r = 0`` first logins, then reconnects); the
    rounds are spread evenly over 08:00-22:00 UTC of ``day``, so with the default tenant timezone
    (Europe/London, UTC+0 in November) every login falls on the same local day.
    """
    path = f"/webhooks/{tenant}/purple/{token}"
    headers = {"Content-Type": "application/json"}
    start = datetime.fromisoformat(f"{day}T08:00:00+00:00")
    # spread the rounds over 08:00-22:00 local (London, UTC+0 in winter) so all stay on one day
    step = timedelta(seconds=(14 * 3600) / (reconnects + 1))
    for round_ in range(reconnects + 1):
        at = start + step * round_
        for guest in range(n_guests):
            yield path, headers, purple_login_body(guest, at, venue=venue)
