"""LoyaltyLion Admin API v2 client: custom activities, the Orders API, activity state changes.

Docs: https://developers.loyaltylion.com/api (introduction, authentication, rate limits),
``/api-reference/v2/resources/activities/create-activity``, ``.../update-activity``,
``.../orders/create-order``, ``.../orders/update-order``, ``.../orders/get-order``.

* Auth: ``Authorization: Bearer <programme API key>``; ``site_id`` query parameter for
  multi-site programmes. 401 (bad key) and 403 (key lacks a scope) are fatal with a clear reason.
  Scopes (API keys page): activities need ``write_customers`` (there is no ``write_activities``),
  orders ``write_orders`` and, for the lookup after an unknown outcome, ``read_orders``
  (listing activities back presumably needs ``read_customers``: not stated there).
* 20 requests/s per programme, shared by every worker through :class:`RateLimiter`; a 429 pauses
  the whole budget (``Retry-After`` when given, else 1 s) and the job is retried.
* ``POST /v2/activities`` (201, empty body): ``name`` = the tenant's rule name, ``merchant_id`` =
  our business key, ``date`` always (LoyaltyLion would default it to "now"), ``guest`` always
  (LoyaltyLion defaults to ``true``, and guests earn nothing for custom activities);
  ``properties.url`` where the tenant configures one (the Clickthrough/Visit rules need it).
  LoyaltyLion documents no dedup on a repeated ``merchant_id``: the connector's ledger guarantees
  once, and :class:`AttemptMarkers` + a ``GET /v2/activities`` scan close the crash window.
* Purchases use the Orders API: ``POST /v2/orders`` with decimal strings in major units; when an
  earlier attempt's outcome is unknown, ``GET /v2/orders/{merchant_id}`` decides between create and
  the idempotent full ``PUT /v2/orders/{merchant_id}``, which sends only the documented fields
  (``payment_status``, ``refund_status``, ``cancellation_status``, ``total_paid``,
  ``total_refunded``). Shopify orders are skipped by default (LoyaltyLion imports them itself).
* Reversals (booking status updates from PMS sources): a cancellation declines the stay's Booking
  activity, a status back to pre-arrival (reverted check-in) declines its Checked in, through
  ``PUT /v2/activities/{name}/{merchant_id}`` ``{"state": "declined"}`` (204; LoyaltyLion treats
  it as void when the activity was already approved). A Booking to decline that LoyaltyLion does
  not hold yet is retried (its own delivery may still be retrying); other status updates, and
  bookings cancelled before LoyaltyLion heard of them, are ignored with a reason.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import Any

import requests

from connector.activities import UNKNOWN_CURRENCY, Activity, hash_identifier
from connector.attempts import AttemptMarkers
from connector.errors import FatalDestinationError, RetriableDestinationError, UnsupportedEvent
from connector.http import HttpClient, isoformat, path_segment
from connector.money import format_major
from connector.platforms.base import PURCHASE_TYPES, ContactCache, Receipt, is_status_update, reversed_key
from connector.ratelimit import RateLimiter
from connector.vendors.loyaltylion.config import LoyaltyLionConfig

log = logging.getLogger(__name__)

RECONCILE_SLACK = timedelta(minutes=10)  # clock skew between us and LoyaltyLion's created_at
RECONCILE_MAX_PAGES = 20
PRE_ARRIVAL = frozenset({"Inquired", "Confirmed", "Optional", "Requested"})


def budget_name(api_key: str) -> str:
    """Shared rate budget of one programme (keys are per programme; never the key itself)."""
    return "loyaltylion:" + hashlib.sha256(api_key.encode()).hexdigest()[:16]


def customer_fields(activity: Activity, config: LoyaltyLionConfig) -> dict[str, Any]:
    """``customer_id``, ``customer_email`` and the deliberate ``guest`` flag."""
    email = activity.person.email
    if config.guest == "always":
        guest = True
    elif config.guest == "without_consent":
        guest = activity.person.marketing_consent is not True
    else:
        guest = False
    return {
        "customer_id": email if config.customer_id == "email" else hash_identifier(email),
        "customer_email": email,
        "guest": guest,
    }


def reversal_target(activity: Activity) -> str | None:
    """The activity type a booking status update reverses at LoyaltyLion, if any.

    A cancellation reverses the stay's Booking; a status back to pre-arrival (a reverted
    check-in) reverses its Checked in. Other updates have no counterpart.
    """
    if not is_status_update(activity) or activity.booking is None:
        return None
    if activity.booking.status == "Canceled":
        return "Booking"
    if activity.booking.status in PRE_ARRIVAL:
        return "Checked in"
    return None


def activity_body(activity: Activity, config: LoyaltyLionConfig) -> dict[str, Any]:
    """The ``POST /v2/activities`` body (pure, tested for shape)."""
    body: dict[str, Any] = {
        "name": config.rule_name(activity.type),
        **customer_fields(activity, config),
        "merchant_id": activity.business_key,
        "date": isoformat(activity.happened_at),
    }
    url = config.activity_urls.get(activity.type)
    if url:
        body["properties"] = {"url": url}
    return body


def order_body(activity: Activity, config: LoyaltyLionConfig) -> dict[str, Any]:
    """The ``POST /v2/orders`` body: decimal strings in major units, paid in full."""
    if activity.spend is None or not activity.currency_code:
        raise FatalDestinationError(
            f"loyaltylion: purchase {activity.business_key} has no amount", destination="loyaltylion"
        )
    currency = activity.currency_code
    total = format_major(activity.spend, currency)
    shipping_minor = activity.attributes.get("total_shipping", 0)
    shipping = format_major(shipping_minor if isinstance(shipping_minor, int) else 0, currency)
    body: dict[str, Any] = {
        "merchant_id": activity.business_key,
        **customer_fields(activity, config),
        "total": total,
        "total_shipping": shipping,
        "payment_status": "paid",
        "total_paid": total,
        "date": isoformat(activity.happened_at),
    }
    number = activity.attributes.get("order_number")
    if isinstance(number, str | int) and not isinstance(number, bool):
        body["merchant_number"] = str(number)
    return body


def order_update_body(activity: Activity, config: LoyaltyLionConfig) -> dict[str, Any]:
    """The full-state ``PUT /v2/orders/{merchant_id}`` body: the documented fields only."""
    created = order_body(activity, config)
    return {
        "payment_status": created["payment_status"],
        "refund_status": "not_refunded",
        "cancellation_status": "not_cancelled",
        "total_paid": created["total_paid"],
        "total_refunded": format_major(0, activity.currency_code or "USD"),
    }


class LoyaltyLionClient(HttpClient):
    """LoyaltyLion Admin API v2 for one programme."""

    destination = "loyaltylion"
    platform = "loyaltylion"
    # The connection check (see NOTE.md).
    check_request = ("GET", "/v2/identity/whoami")

    def describe_check(self, answer: Any) -> str:
        """The identity LoyaltyLion reports for the key (its kind and scopes, when given)."""
        identity = answer.get("identity") if isinstance(answer, dict) else None
        if not isinstance(identity, dict):
            return "the Admin API accepted the key"
        parts = [str(identity[k]) for k in ("type", "name") if identity.get(k)]
        scopes = identity.get("scopes")
        if isinstance(scopes, list) and scopes:
            parts.append("scopes: " + ", ".join(str(s) for s in scopes[:12]))
        return "; ".join(parts) or "the Admin API accepted the key"

    def __init__(
        self,
        config: LoyaltyLionConfig,
        *,
        tenant: str,
        redis: Any,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        api_key = config.api_key.get_secret_value()
        super().__init__(
            config.base_url,
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            timeout=timeout,
            secrets=(api_key,),
            session=session,
        )
        self.config = config
        self.tenant = tenant
        self.limiter = RateLimiter(redis, budget_name(api_key), config.requests_per_second, 1.0)
        self.markers = AttemptMarkers(redis, tenant, self.platform)

    @classmethod
    def from_config(cls, config: LoyaltyLionConfig, *, tenant: str, redis: Any, timeout: float) -> LoyaltyLionClient:
        """The client for one tenant's table; ``redis`` holds the shared budget and attempt markers."""
        if redis is None:
            raise FatalDestinationError("loyaltylion delivery needs Redis", destination="loyaltylion")
        return cls(config, tenant=tenant, redis=redis, timeout=timeout)

    # -- transport -------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call within the programme's shared budget; 429 pauses every worker."""
        if self.config.site_id:
            kwargs["params"] = {**(kwargs.get("params") or {}), "site_id": self.config.site_id}
        self.limiter.acquire()
        try:
            return super().request(method, path, **kwargs)
        except RetriableDestinationError as exc:
            if exc.status == 429:
                wait = exc.retry_after if exc.retry_after is not None else 1.0
                self.limiter.pause(wait)
                exc.retry_after = wait
            raise

    def observe(self, response: requests.Response) -> None:
        """401/403 are configuration problems: say which."""
        if response.status_code == 401:
            raise FatalDestinationError(
                f"loyaltylion: the API key was rejected (401); check tenants.{self.tenant}.loyalty.api_key",
                destination=self.destination,
                status=401,
            )
        if response.status_code == 403:
            raise FatalDestinationError(
                "loyaltylion: the API key lacks a scope this call needs (403; activities need "
                f"write_customers, orders write_orders and read_orders) for tenant {self.tenant}",
                destination=self.destination,
                status=403,
            )
        if response.status_code == 429 and "Retry-After" not in response.headers:
            log.warning("loyaltylion: 429 without Retry-After for tenant %s", self.tenant)

    # -- operations ------------------------------------------------------------------------

    def deliver(self, activity: Activity, contacts: ContactCache) -> Receipt:
        """Send one activity in LoyaltyLion's vocabulary (see the module docstring)."""
        reason = self.config.skip_reason(activity.source)
        if reason:
            raise UnsupportedEvent(reason, counter="platform_imports_source")
        if activity.type in self.config.skip_activities:
            raise UnsupportedEvent(
                f"{activity.type} is in tenants.{self.tenant}.loyalty.skip_activities", counter="skipped_by_config"
            )
        if activity.type in PURCHASE_TYPES:
            if activity.spend is None and UNKNOWN_CURRENCY in activity.attributes:
                raise UnsupportedEvent(  # an order needs its total; an unknown currency has no places
                    f"LoyaltyLion orders need a total; currency {activity.attributes[UNKNOWN_CURRENCY]!r} "
                    "is not an ISO 4217 code",
                    counter="unknown_currency",
                )
            return self.deliver_order(activity)
        booking = activity.booking
        if booking is not None and booking.status == "Canceled" and not is_status_update(activity):
            raise UnsupportedEvent(
                "the booking was cancelled before LoyaltyLion heard of it: nothing to award or reverse",
                counter="cancelled_booking",
            )
        target = reversal_target(activity)
        if target is not None:
            if target in self.config.skip_activities:
                raise UnsupportedEvent(f"{target} activities are not sent to LoyaltyLion", counter="skipped_by_config")
            return self.decline_activity(activity, target)
        if is_status_update(activity):
            raise UnsupportedEvent(
                f"booking status update to {booking.status if booking else '?'} has no LoyaltyLion counterpart",
                counter="status_update",
            )
        return self.create_activity(activity)

    def create_activity(self, activity: Activity) -> Receipt:
        """``POST /v2/activities`` once (reconciling first when an earlier attempt is unresolved)."""
        body = activity_body(activity, self.config)
        earlier = self.markers.begin(activity)
        if earlier is not None and self.find_activity(body["name"], activity.business_key, earlier):
            log.info("loyaltylion: activity %s found after an unresolved attempt", body["name"])
            return Receipt(platform=self.platform, remote_id=f"{body['name']}/{activity.business_key}", created=False)
        with self.markers.attempt(activity, first=earlier is None):
            self.request("POST", "/v2/activities", json=body)
        return Receipt(platform=self.platform, remote_id=f"{body['name']}/{activity.business_key}", created=True)

    def find_activity(self, name: str, merchant_id: str, since: float) -> bool:
        """Whether LoyaltyLion holds an activity (rule ``name``, ``merchant_id``) created after ``since``."""
        start = datetime.fromtimestamp(since).astimezone() - RECONCILE_SLACK
        params: dict[str, Any] = {"created_at_min": isoformat(start), "limit": 500}
        for _ in range(RECONCILE_MAX_PAGES):
            page = self.json(self.request("GET", "/v2/activities", params=params))
            for item in page.get("activities") or []:
                rule = item.get("rule") or {}
                if item.get("merchant_id") == merchant_id and rule.get("name") == name:
                    return True
            cursor = (page.get("cursor") or {}).get("next")
            if not cursor:
                return False
            params = {"cursor": cursor, "limit": 500}
        raise RetriableDestinationError(
            "loyaltylion: too many activities to reconcile an unresolved attempt; will retry",
            destination=self.destination,
        )

    def decline_activity(self, activity: Activity, target: str) -> Receipt:
        """``PUT /v2/activities/{name}/{merchant_id}`` ``declined`` (void if already approved); idempotent."""
        name = self.config.rule_name(target)
        merchant_id = reversed_key(activity)
        path = f"/v2/activities/{path_segment(name, safe='$')}/{path_segment(merchant_id)}"
        try:
            self.request("PUT", path, json={"state": "declined"})
        except FatalDestinationError as exc:
            if exc.status != 404:
                raise
            if target == "Booking":  # it must exist: its delivery may still be retrying
                raise RetriableDestinationError(
                    f"loyaltylion: no {name} activity {merchant_id} to decline yet; retrying",
                    destination=self.destination,
                    status=404,
                ) from None
            raise UnsupportedEvent(  # a reinstatement, or a check-in LoyaltyLion never received
                f"no {name} activity {merchant_id} at LoyaltyLion to decline", counter="nothing_to_reverse"
            ) from None
        return Receipt(platform=self.platform, remote_id=f"{name}/{merchant_id}:declined", created=True)

    def deliver_order(self, activity: Activity) -> Receipt:
        """``POST /v2/orders`` once; after an unresolved attempt, look it up and ``PUT`` the full state."""
        body = order_body(activity, self.config)
        path = f"/v2/orders/{path_segment(activity.business_key)}"
        earlier = self.markers.begin(activity)
        if earlier is not None and self.order_exists(path):
            self.request("PUT", path, json=order_update_body(activity, self.config))
            return Receipt(platform=self.platform, remote_id=activity.business_key, created=False)
        with self.markers.attempt(activity, first=earlier is None):
            self.request("POST", "/v2/orders", json=body)
        return Receipt(platform=self.platform, remote_id=activity.business_key, created=True)

    def order_exists(self, path: str) -> bool:
        """``GET /v2/orders/{merchant_id}``: 200 yes, 404 no."""
        try:
            self.request("GET", path)
        except FatalDestinationError as exc:
            if exc.status == 404:
                return False
            raise
        return True
