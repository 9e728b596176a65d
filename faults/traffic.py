"""The fault run's traffic: its tenants file and one generator per source family.

A *logical webhook* is one business event (an order paid, one stay event, one Wi-Fi login, one
loyalty event); the sender delivers each three times, re-signing every delivery on the fly (a
Standard Webhooks timestamp is part of the signature). Families and sources:

* ``shopify``: ``orders/paid`` in USD, EUR, GBP, JPY, KWD and BHD, to a Glu, a LoyaltyLion and a
  Voucherify tenant;
* ``stays``: three events per stay in random order — Standard Webhooks ``stay.*`` (all three
  platforms), Hostaway (full reservations, past dates), and the thin Mews, Apaleo and Cloudbeds
  messages (the reservation, already departed, is seeded into the PMS sandbox first);
* ``wifi``: Purple logins (all three platforms) and the standard ``wifi.login``;
* ``relay``: Voucherify ``customer.*`` events to Klaviyo and to Mailchimp, LoyaltyLion program
  events to Klaviyo.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import random
import textwrap
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connector.activities import hash_identifier
from connector.sandbox.pms_samples import DEMO_ENTERPRISE, mews_batch_data
from connector.sandbox.relay_samples import voucherify_event
from connector.sandbox.server import DEFAULT_KEYS
from connector.sandbox.wifi_samples import purple_login_body

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SAMPLE_ORDER = json.loads((ROOT / "connector/sandbox/samples/shopify-order.json").read_text())

SHOPIFY_SECRET = "faults-shopify-secret"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"faults-standard-webhooks-secret!!").decode()
PURPLE_TOKEN = "faults-purple-token"
MEWS_TOKEN = "faults-mews-token"
APALEO_TOKEN = "faults-apaleo-token"
CLOUDBEDS_TOKEN = "faults-cloudbeds-token"
HOSTAWAY_USER, HOSTAWAY_PASSWORD = "faults-hostaway", "faults-hostaway-password"
VOUCHERIFY_SECRET = "faults-voucherify-secret"
LOYALTYLION_SECRET = "faults-loyaltylion-secret"

PLATFORM_TENANTS = {"glu": "fx-glu", "loyaltylion": "fx-lion", "voucherify": "fx-vouch"}
FAMILIES = ("shopify", "stays", "wifi", "relay")
# Amounts with the currency's own number of decimals (JPY 0, KWD and BHD 3); KWD and BHD end in 0
# so that Voucherify (hundredths of the major unit) can take them.
ORDER_AMOUNTS = {"USD": "49.99", "EUR": "120.50", "GBP": "45.00", "JPY": "1500", "KWD": "12.250", "BHD": "3.500"}

Request = tuple[str, dict[str, str], bytes]  # path, headers, body


def tenants_toml(sandbox_url: str) -> str:
    """Tenants of the fault run, every destination on the sandbox server."""
    s = sandbox_url
    glu = f'platform = "glu"\nbase_url = "{s}/glu"\napi_key = "{DEFAULT_KEYS["glu"]}"'
    sources = f"""
        [tenants.{{t}}.sources.shopify]
        shop_domain = "{{t}}.myshopify.com"
        secrets = ["{SHOPIFY_SECRET}"]
        [tenants.{{t}}.sources.standard]
        secrets = ["{STANDARD_SECRET}"]
        [tenants.{{t}}.sources.purple]
        token = "{PURPLE_TOKEN}"
    """
    text = f"""
        [tenants.fx-glu]
        timezone = "Europe/London"
        [tenants.fx-glu.loyalty]
        {glu}
        [tenants.fx-glu.sources.mews]
        token = "{MEWS_TOKEN}"
        api_url = "{s}/mews"
        client_token = "{DEFAULT_KEYS["mews_client_token"]}"
        access_token = "{DEFAULT_KEYS["mews_access_token"]}"
        [tenants.fx-glu.sources.apaleo]
        token = "{APALEO_TOKEN}"
        client_id = "{DEFAULT_KEYS["apaleo_client_id"]}"
        client_secret = "{DEFAULT_KEYS["apaleo_client_secret"]}"
        api_url = "{s}/apaleo"
        identity_url = "{s}/apaleo"
        [tenants.fx-glu.sources.cloudbeds]
        token = "{CLOUDBEDS_TOKEN}"
        api_url = "{s}/cloudbeds"
        api_key = "{DEFAULT_KEYS["cloudbeds"]}"
        currency = "GBP"
        [tenants.fx-glu.sources.hostaway]
        username = "{HOSTAWAY_USER}"
        password = "{HOSTAWAY_PASSWORD}"
        {sources.format(t="fx-glu")}
        [tenants.fx-lion]
        timezone = "Europe/London"
        [tenants.fx-lion.loyalty]
        platform = "loyaltylion"
        base_url = "{s}/loyaltylion"
        api_key = "{DEFAULT_KEYS["loyaltylion"]}"
        skip_shopify_orders = false
        {sources.format(t="fx-lion")}
        [tenants.fx-vouch]
        timezone = "Europe/London"
        [tenants.fx-vouch.loyalty]
        platform = "voucherify"
        base_url = "{s}/voucherify"
        app_id = "{DEFAULT_KEYS["voucherify_app_id"]}"
        app_token = "{DEFAULT_KEYS["voucherify_app_token"]}"
        {sources.format(t="fx-vouch")}
        [tenants.fx-relay]
        timezone = "Europe/London"
        [tenants.fx-relay.loyalty]
        {glu}
        [tenants.fx-relay.sources.voucherify]
        secrets = ["{VOUCHERIFY_SECRET}"]
        [tenants.fx-relay.sources.loyaltylion]
        secrets = ["{LOYALTYLION_SECRET}"]
        [tenants.fx-relay.esp]
        provider = "klaviyo"
        base_url = "{s}/klaviyo"
        api_key = "{DEFAULT_KEYS["klaviyo"]}"
        [tenants.fx-relay-mc]
        timezone = "Europe/London"
        [tenants.fx-relay-mc.loyalty]
        {glu}
        [tenants.fx-relay-mc.sources.voucherify]
        secrets = ["{VOUCHERIFY_SECRET}"]
        [tenants.fx-relay-mc.esp]
        provider = "mailchimp"
        base_url = "{s}/mailchimp"
        api_key = "{DEFAULT_KEYS["mailchimp"]}"
        list_id = "sandbox-list"
    """
    return "\n".join(line.strip() for line in textwrap.dedent(text).splitlines()) + "\n"


@dataclass
class LogicalWebhook:
    """One business event, delivered ``copies`` times; ``build`` makes each delivery, signed now."""

    index: int
    family: str
    source: str
    tenant: str
    build: Callable[[], Request]
    statuses: list[int] = field(default_factory=list)  # the final answer of each delivery
    job_ids: set[str] = field(default_factory=set)
    ignored_at_intake: str | None = None
    # What the destination must end up holding: (tenant, id in the business key, distinct activities)
    expect: tuple[str, str, int] | None = None

    @property
    def acknowledged(self) -> bool:
        """Whether any delivery got a 2xx."""
        return any(200 <= s < 300 for s in self.statuses)


def hex_hmac(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256 (Voucherify)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def b64_hmac(secret: str, body: bytes) -> str:
    """Base64 HMAC-SHA256 (Shopify, LoyaltyLion)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def standard_headers(msg_id: str, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers, signed now (each redelivery gets a fresh timestamp, like the spec's senders)."""
    stamp = int(datetime.now(UTC).timestamp())
    key = base64.b64decode(STANDARD_SECRET.removeprefix("whsec_"))
    signed = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": "v1," + base64.b64encode(signed).decode(),
    }


def fixed_request(path: str, headers: dict[str, str], body: bytes) -> Callable[[], Request]:
    """A delivery whose bytes and headers never change (URL-token and basic-auth sources)."""
    return lambda: (path, headers, body)


class Traffic:
    """Builds the logical webhooks of a run, and the PMS data the Mews sandbox must hold first."""

    def __init__(self, count: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.run = uuid.UUID(int=self.rng.getrandbits(128)).hex[:8]
        self.now = datetime.now(UTC)
        self.webhooks: list[LogicalWebhook] = []
        self.mews_seed: dict[str, list[dict[str, Any]]] = {}
        self.reservation_seed: dict[str, list[dict[str, Any]]] = {"apaleo": [], "cloudbeds": []}
        weights = {"shopify": 3, "stays": 3, "wifi": 2, "relay": 2}
        while len(self.webhooks) < count:
            family = self.rng.choices(list(weights), weights=list(weights.values()))[0]
            getattr(self, f"_add_{family}")()
        # Never cut a business event in two: a stay whose later events fall past ``count`` would
        # expect activities for events that are never sent (reported as lost). Drop it whole.
        cut = count
        while 0 < cut < len(self.webhooks) and self.webhooks[cut].expect == self.webhooks[cut - 1].expect:
            cut -= 1
        del self.webhooks[cut:]
        stays = [w for w in self.webhooks if w.family == "stays"]
        # Stay events in random order: shuffle the positions the stays' events occupy.
        positions = [w.index for w in stays]
        self.rng.shuffle(stays)
        for position, webhook in zip(positions, stays, strict=True):
            self.webhooks[position] = webhook
        for index, webhook in enumerate(self.webhooks):
            webhook.index = index

    @staticmethod
    def _standard_request(tenant: str, msg_id: str, body: bytes) -> Callable[[], Request]:
        """A Standard Webhooks delivery of ``body``, signed when it is sent."""
        return lambda: (f"/webhooks/{tenant}/standard", standard_headers(msg_id, body), body)

    def _add(
        self,
        family: str,
        source: str,
        tenant: str,
        build: Callable[[], Request],
        expect: str,
        count: int = 1,
    ) -> None:
        webhook = LogicalWebhook(len(self.webhooks), family, source, tenant, build, expect=(tenant, expect, count))
        self.webhooks.append(webhook)

    # ---------------------------------------------------------------------------- shopify
    def _add_shopify(self) -> None:
        n = len(self.webhooks)
        tenant = self.rng.choice(list(PLATFORM_TENANTS.values()))
        currency = self.rng.choice(list(ORDER_AMOUNTS))
        order = copy.deepcopy(SAMPLE_ORDER)
        email = f"buyer{n}.{self.run}@example.com"
        order_id = 7_000_000_000 + n
        amount = ORDER_AMOUNTS[currency]
        order.update(
            id=order_id,
            admin_graphql_api_id=f"gid://shopify/Order/{order_id}",
            email=email,
            contact_email=email,
            currency=currency,
            presentment_currency=currency,
            total_price=amount,
            current_total_price=amount,
            subtotal_price=amount,
        )
        order["total_price_set"] = {
            "shop_money": {"amount": amount, "currency_code": currency},
            "presentment_money": {"amount": amount, "currency_code": currency},
        }
        order["customer"].update(id=9_000_000 + n, email=email)
        body = json.dumps(order).encode()
        webhook_id = str(uuid.UUID(int=self.rng.getrandbits(128)))

        def build() -> Request:
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": "orders/paid",
                "X-Shopify-Hmac-Sha256": b64_hmac(SHOPIFY_SECRET, body),
                "X-Shopify-Shop-Domain": f"{tenant}.myshopify.com",
                "X-Shopify-Webhook-Id": webhook_id,
                "X-Shopify-API-Version": "2025-10",
            }
            return f"/webhooks/{tenant}/shopify", headers, body

        self._add("shopify", "shopify", tenant, build, f"order:{order_id}")

    # ------------------------------------------------------------------------------ stays
    def _add_stays(self) -> None:
        kind = self.rng.choice(("standard", "standard", "hostaway", "mews", "apaleo", "cloudbeds"))
        getattr(self, f"_stay_{kind}")(len(self.webhooks))

    def _stay_standard(self, n: int) -> None:
        tenant = self.rng.choice(list(PLATFORM_TENANTS.values()))
        booked = self.now - timedelta(days=30, minutes=n % 1000)
        arrival, departure = (self.now - timedelta(days=3)).date(), (self.now - timedelta(days=1)).date()
        email = f"stay{n}.{self.run}@example.com"
        base = {
            "pms": "fxpms",
            "property_id": "LON-1",
            "reservation_id": f"R{self.run}-{n}",
            "guest": {"email": email, "first_name": "Guest", "last_name": str(n)},
            "booked_at": booked.isoformat(),
            "arrival": arrival.isoformat(),
            "departure": departure.isoformat(),
            "number_of_guests": 2,
            "room_type": "Deluxe Double",
            "total": {"amount": "380.00", "currency": "GBP"},
        }
        steps = [
            ("stay.booked", "confirmed", booked, {}),
            (
                "stay.checked_in",
                "checked_in",
                self.now - timedelta(days=3, hours=-15),
                {"checked_in_at": (self.now - timedelta(days=3, hours=-15)).isoformat()},
            ),
            (
                "stay.checked_out",
                "checked_out",
                self.now - timedelta(days=1, hours=-11),
                {
                    "checked_in_at": (self.now - timedelta(days=3, hours=-15)).isoformat(),
                    "checked_out_at": (self.now - timedelta(days=1, hours=-11)).isoformat(),
                },
            ),
        ]
        for event, status, updated, extra in steps:
            data = {**base, "status": status, "updated_at": updated.isoformat(), **extra}
            body = json.dumps({"type": event, "timestamp": updated.isoformat(), "data": data}).encode()
            msg_id = f"msg_{self.run}_{n}_{status}"
            self._add(
                "stays",
                "standard",
                tenant,
                self._standard_request(tenant, msg_id, body),
                str(base["reservation_id"]),
                3,
            )

    def _stay_hostaway(self, n: int) -> None:
        created = json.loads((FIXTURES / "hostaway/reservation_created.json").read_text())
        data = created["data"]
        email = f"host{n}.{self.run}@example.com"
        data.update(
            id=80_000_000 + n,
            reservationId=f"40160-{80_000_000 + n}",
            guestEmail=email,
            arrivalDate=(self.now - timedelta(days=4)).date().isoformat(),
            departureDate=(self.now - timedelta(days=2)).date().isoformat(),
        )
        auth = "Basic " + base64.b64encode(f"{HOSTAWAY_USER}:{HOSTAWAY_PASSWORD}".encode()).decode()
        for step, (event, status) in enumerate(
            [("reservation.created", "new"), ("reservation.updated", "modified"), ("reservation.updated", "confirmed")]
        ):
            updated = (self.now - timedelta(days=20 - step)).strftime("%Y-%m-%d %H:%M:%S")
            body = json.dumps({**created, "event": event, "data": {**data, "status": status, "updatedOn": updated}})
            headers = {"Content-Type": "application/json", "Authorization": auth}
            self._add(
                "stays",
                "hostaway",
                "fx-glu",
                fixed_request("/webhooks/fx-glu/hostaway", headers, body.encode()),
                str(data["id"]),
                3,
            )

    def _stay_mews(self, n: int) -> None:
        data = mews_batch_data(1, salt=f"{self.run}-{n}")
        for collection, items in data.items():
            self.mews_seed.setdefault(collection, []).extend(items)
        reservation, customer = data["reservations"][0]["Id"], data["customers"][0]["Id"]
        body = json.dumps(
            {
                "EnterpriseId": DEMO_ENTERPRISE,
                "IntegrationId": str(uuid.uuid5(uuid.NAMESPACE_URL, "faults")),
                "Events": [
                    {"Discriminator": "ServiceOrderUpdated", "Value": {"Id": reservation}},
                    {"Discriminator": "CustomerAdded", "Value": {"Id": customer}},
                ],
            }
        ).encode()
        for _ in range(3):  # Mews sends a message per change; the worker reads the reservation as it is now
            self._add(
                "stays",
                "mews",
                "fx-glu",
                fixed_request(f"/webhooks/fx-glu/mews/{MEWS_TOKEN}", {"Content-Type": "application/json"}, body),
                reservation,
                3,
            )

    def _stay_apaleo(self, n: int) -> None:
        reservation = json.loads((FIXTURES / "apaleo/reservation_checkedout.json").read_text())
        reservation_id = f"FX{self.run.upper()}{n}-1"
        reservation.update(id=reservation_id, bookingId=reservation_id.removesuffix("-1"))
        reservation["primaryGuest"]["email"] = f"apaleo{n}.{self.run}@example.com"
        self.reservation_seed["apaleo"].append(reservation)  # already departed: the worker reads it as it is now
        message = json.loads((FIXTURES / "apaleo/reservation_checked_out.json").read_text())
        for kind in ("created", "checked-in", "checked-out"):
            body = json.dumps(
                {
                    **message,
                    "type": kind,
                    "id": str(uuid.UUID(int=self.rng.getrandbits(128))),
                    "data": {"entityId": reservation_id},
                }
            ).encode()
            self._add(
                "stays",
                "apaleo",
                "fx-glu",
                fixed_request(f"/webhooks/fx-glu/apaleo/{APALEO_TOKEN}", {"Content-Type": "application/json"}, body),
                reservation_id,
                3,
            )

    def _stay_cloudbeds(self, n: int) -> None:
        reservation = json.loads((FIXTURES / "cloudbeds/reservation_checked_out.json").read_text())
        reservation_id = str(8_000_000_000_000 + n)
        reservation.update(reservationID=reservation_id, guestEmail=f"cloudbeds{n}.{self.run}@example.com")
        self.reservation_seed["cloudbeds"].append(reservation)
        message = json.loads((FIXTURES / "cloudbeds/status_checked_out.json").read_text())
        created = json.loads((FIXTURES / "cloudbeds/reservation_created.json").read_text())
        stamp = (self.now - timedelta(days=2)).timestamp()
        bodies = [
            {**created, "reservationID": reservation_id, "timestamp": stamp - 86400 * 20},
            {**message, "reservationID": reservation_id, "status": "checked_in", "timestamp": stamp - 86400},
            {**message, "reservationID": reservation_id, "status": "checked_out", "timestamp": stamp},
        ]
        for body in bodies:
            self._add(
                "stays",
                "cloudbeds",
                "fx-glu",
                fixed_request(
                    f"/webhooks/fx-glu/cloudbeds/{CLOUDBEDS_TOKEN}",
                    {"Content-Type": "application/json"},
                    json.dumps(body).encode(),
                ),
                reservation_id,
                3,
            )

    # ------------------------------------------------------------------------------- wifi
    def _add_wifi(self) -> None:
        n = len(self.webhooks)
        if self.rng.random() < 0.7:
            tenant = self.rng.choice(list(PLATFORM_TENANTS.values()))
            body = purple_login_body(1_000_000 + n, self.now - timedelta(minutes=5), venue="fx-lobby")
            self._add(
                "wifi",
                "purple",
                tenant,
                fixed_request(f"/webhooks/{tenant}/purple/{PURPLE_TOKEN}", {"Content-Type": "application/json"}, body),
                hash_identifier(f"guest{1_000_000 + n:06d}@example.com"),
            )
            return
        at = (self.now - timedelta(minutes=3)).isoformat()
        body = json.dumps(
            {
                "type": "wifi.login",
                "timestamp": at,
                "data": {
                    "portal": "unifi",
                    "logged_in_at": at,
                    "venue": {"id": "fx-bar", "name": "Faults Bar", "timezone": "Europe/London"},
                    "guest": {"email": f"wifi{n}.{self.run}@example.com", "first_name": "Wifi"},
                },
            }
        ).encode()
        msg_id = f"msg_{self.run}_wifi_{n}"
        self._add(
            "wifi",
            "standard",
            "fx-glu",
            self._standard_request("fx-glu", msg_id, body),
            hash_identifier(f"wifi{n}.{self.run}@example.com"),
        )

    # ------------------------------------------------------------------------------ relay
    def _add_relay(self) -> None:
        n = len(self.webhooks)
        if self.rng.random() < 0.3:
            event = json.loads((FIXTURES / "loyaltylion/customer_tier_upgraded.json").read_text())
            event["id"] = str(uuid.UUID(int=self.rng.getrandbits(128)))
            event["payload"]["id"] = str(uuid.UUID(int=self.rng.getrandbits(128)))
            event["payload"]["properties"]["customer"]["email"] = f"lion{n}.{self.run}@example.com"
            body = json.dumps(event).encode()

            def build_lion() -> Request:
                return (
                    "/webhooks/fx-relay/loyaltylion",
                    {
                        "Content-Type": "application/json",
                        "x-loyaltylion-hmac-sha256": b64_hmac(LOYALTYLION_SECRET, body),
                        "x-loyaltylion-topic": event["topic"],
                    },
                    body,
                )

            self._add("relay", "loyaltylion", "fx-relay", build_lion, event["payload"]["id"])
            return
        tenant = "fx-relay" if self.rng.random() < 0.6 else "fx-relay-mc"
        event_body = voucherify_event(n, self.run, self.now)
        body = json.dumps(event_body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "x-voucherify-signature": hex_hmac(VOUCHERIFY_SECRET, body)}
        event_id = str(event_body["event"]["id"])  # type: ignore[index]
        self._add(
            "relay", "voucherify", tenant, fixed_request(f"/webhooks/{tenant}/voucherify", headers, body), event_id
        )
