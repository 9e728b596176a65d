"""Voucherify client: customer upsert by ``source_id``, then one custom event per activity.

Docs: https://docs.voucherify.io/reference (Customers: create customer = upsert; Events: track
custom event; Errors; Limits — ``voucherifyio/voucherify-openapi:documentation/guides/limits.mdx``).

* Auth: ``X-App-Id`` + ``X-App-Token`` (server-side application keys). Regional clusters:
  ``https://api.voucherify.io`` (EU, default), ``https://us1.api.voucherify.io``,
  ``https://as1.api.voucherify.io``, or a dedicated cluster URL (``base_url``).
* ``POST /v1/customers`` creates or updates the customer whose ``source_id`` matches; the
  answer's ``id`` is cached per tenant. ``POST /v1/events`` tracks ``event`` (the tenant's name for
  the activity type, which must exist in the project's event schema) with ``metadata``; a booking
  status update (cancellation, reverted check-in) is its own event, ``booking_status_event``,
  so earning rules on bookings do not fire again.
* Amounts are integers in hundredths of the major unit (:func:`voucherify_amount`); a
  three-decimal currency's amount that is not a whole number of hundredths (KWD 245.125) goes as
  the exact decimal string (``amount_decimal`` / ``booking_total_decimal``) with ``currency``
  instead, counted as ``inexact_amounts{destination, currency}``: never a failed stay.
* Plan limits per minute (Business 100, Organization 2,000; optional ``requests_per_minute`` spaces
  our calls): every answer's ``X-Rate-Limit-Remaining`` is read; at 0, or on 429, the shared budget
  is paused until ``X-Rate-Limit-Retry`` (epoch seconds) or ``Retry-After`` and the job is retried
  then. 402 (plan exceeded / subscription) is fatal with a clear reason, as is 401.
* No server dedup for events: the ledger guarantees once. The event's metadata carries our
  business key (``business_key_metadata``, default ``connector_key``). An attempt marker detects a
  retry whose earlier attempt's outcome is unknown (5xx, timeout or connection lost after
  sending); that retry first lists the customer's activity (``GET
  /v1/customers/{id}/activity?type=customer.custom_event&start_date=<first attempt - 10 min>``,
  "List Customer Activity", paged by ``starting_after_id`` = ``more_starting_after`` while
  ``has_more``) and re-sends only when no custom event of that name carries our key (counted as
  ``deliveries{outcome="resent_unknown_outcome"}``; found: ``found_unknown_outcome``). Where the
  event sits in an activity's ``data`` is not pinned down by the docs: :func:`activity_event`.
* The cached customer id is used only by that lookup (events name the customer by ``source_id``):
  a customer deleted at Voucherify since it was cached answers it 404 ("The requested resource
  could not be found", Errors.md), raised as :class:`StaleContactError` so that ``deliver``
  forgets the id, upserts the customer again and looks up (or sends) once more.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import datetime, timedelta
from typing import Any

import requests

from connector import metrics
from connector.activities import Activity, hash_identifier
from connector.attempts import AttemptMarkers
from connector.errors import FatalDestinationError, RetriableDestinationError, StaleContactError, UnsupportedEvent
from connector.http import HttpClient, isoformat, parse_retry_after, path_segment, redact
from connector.money import exponent, format_major
from connector.platforms.base import ContactCache, Receipt, is_status_update, reversed_key
from connector.ratelimit import RateLimiter
from connector.vendors.voucherify.config import VoucherifyConfig

log = logging.getLogger(__name__)

UNLIMITED = 1_000_000_000  # no configured requests_per_minute: only the vendor's pause signals apply
PLAN_WINDOW = 60.0  # seconds: Voucherify counts plan limits per minute (limits.mdx); fixed clock minutes assumed
RECONCILE_SLACK = timedelta(minutes=10)  # clock skew between us and Voucherify's created_at
RECONCILE_PAGE = 100  # the documented maximum ``limit`` of List Customer Activity
RECONCILE_MAX_PAGES = 20
CUSTOM_EVENT_ACTIVITY = "customer.custom_event"


def budget_name(app_id: str) -> str:
    """Shared rate budget of one Voucherify project (by application id digest)."""
    return "voucherify:" + hashlib.sha256(app_id.encode()).hexdigest()[:16]


def voucherify_amount(minor: int, currency: str) -> int | None:
    """An amount in Voucherify's integer form: hundredths of the major unit (``"99.95"`` → 9995).

    Voucherify stores money as the major amount multiplied by 100 whatever the currency (its SDKs
    divide by a fixed 100); for two-decimal currencies that equals ISO minor units. JPY 1500 → 150000,
    KWD 1.250 → 125. An amount that is not a whole number of hundredths (KWD 245.125) has no such
    form: ``None`` (see :func:`amount_metadata`). Whether Voucherify really applies x100 to
    zero-decimal currencies is unverified; this function is the one place to change if not.
    """
    places = exponent(currency)
    if places <= 2:
        scaled: int = minor * 10 ** (2 - places)
        return scaled
    step: int = 10 ** (places - 2)
    quotient, remainder = divmod(minor, step)
    return None if remainder else quotient


def amount_metadata(field: str, minor: int, currency: str) -> dict[str, Any]:
    """Event metadata for one amount: ``{field: hundredths}`` where exact, else (a three-decimal
    currency's amount finer than a hundredth) ``{field + "_decimal": "245.125"}``, the exact major-unit
    decimal string, so that the stay is delivered, never failed for its amount's precision. The
    caller adds ``currency``."""
    hundredths = voucherify_amount(minor, currency)
    if hundredths is None:
        return {f"{field}_decimal": format_major(minor, currency)}
    return {field: hundredths}


def inexact_currencies(activity: Activity) -> list[str]:
    """The currencies of the activity's amounts that go as decimal strings (for the metric)."""
    amounts = [(activity.spend, activity.currency_code)]
    if activity.booking is not None:
        amounts.append((activity.booking.total, activity.booking.currency_code))
    return [c for m, c in amounts if m is not None and c and voucherify_amount(m, c) is None]


def source_id(activity: Activity, config: VoucherifyConfig) -> str:
    """The customer's ``source_id``: the normalised email, or its digest."""
    email = activity.person.email
    return email if config.customer_source_id == "email" else hash_identifier(email)


def customer_body(activity: Activity, config: VoucherifyConfig) -> dict[str, Any]:
    """The ``POST /v1/customers`` (upsert) body."""
    person = activity.person
    body: dict[str, Any] = {"source_id": source_id(activity, config), "email": person.email}
    name = " ".join(part for part in (person.first_name, person.last_name) if part)
    if name:
        body["name"] = name
    if person.phone:
        body["phone"] = person.phone
    return body


def event_body(activity: Activity, config: VoucherifyConfig) -> dict[str, Any]:
    """The ``POST /v1/events`` body: event name, customer by ``source_id``, flat metadata."""
    metadata: dict[str, Any] = {
        config.business_key_metadata: activity.business_key,
        "activity": activity.type,
        "source": activity.source,
        "happened_at": isoformat(activity.happened_at),
    }
    if activity.spend is not None and activity.currency_code:
        metadata.update(amount_metadata("amount", activity.spend, activity.currency_code))
        metadata["currency"] = activity.currency_code
    if activity.venue:
        metadata["venue"] = activity.venue
    booking = activity.booking
    if booking is not None:
        metadata.update(
            {
                "check_in": isoformat(booking.check_in),
                "check_out": isoformat(booking.check_out),
                "booking_status": booking.status,
            }
        )
        if booking.number_of_guests is not None:
            metadata["number_of_guests"] = booking.number_of_guests
        if booking.room_type:
            metadata["room_type"] = booking.room_type
        if booking.total is not None and booking.currency_code:
            metadata.update(amount_metadata("booking_total", booking.total, booking.currency_code))
            metadata["currency"] = booking.currency_code
    event = config.event_name(activity.type)
    if is_status_update(activity):  # a later status of a stay, not a new booking
        event = config.booking_status_event
        metadata["stay_key"] = reversed_key(activity)
    return {
        "event": event,
        "customer": {"source_id": source_id(activity, config)},
        "metadata": metadata,
    }


def activity_event(item: Any) -> dict[str, Any] | None:
    """The custom event inside one customer activity of type ``customer.custom_event``, or ``None``.

    UNVERIFIED, and the one place to correct: Voucherify's reference types the activity's ``data``
    as ``{"data": <EventCustomerCustomEvent>, "event_source": …}`` while its older docs and SDKs put
    the type's fields (``event``: the custom event with ``type`` = its name and ``metadata``)
    directly in ``data``, and one SDK names it ``custom_event``. All three places are read.
    """
    if not isinstance(item, dict) or item.get("type") != CUSTOM_EVENT_ACTIVITY:
        return None
    data = item.get("data")
    for holder in (data, data.get("data") if isinstance(data, dict) else None):
        if not isinstance(holder, dict):
            continue
        for field in ("event", "custom_event"):
            event = holder.get(field)
            if isinstance(event, dict):
                return event
    return None


def carries(item: Any, event_name: str, key_field: str, key: str) -> bool:
    """Whether a customer activity is our custom event ``event_name`` carrying business key ``key``."""
    event = activity_event(item)
    if event is None:
        return False
    metadata = event.get("metadata")
    name = event.get("type")
    return isinstance(metadata, dict) and metadata.get(key_field) == key and name in (event_name, None)


class VoucherifyClient(HttpClient):
    """Voucherify server-side API for one project."""

    destination = "voucherify"
    platform = "voucherify"
    # The connection check (see NOTE.md).
    check_request = ("GET", "/v1/customers")
    check_params = {"limit": "1"}

    def describe_check(self, answer: Any) -> str:
        """The project's customer count, which the list answers with."""
        total = answer.get("total") if isinstance(answer, dict) else None
        return f"project reachable, {total} customers" if isinstance(total, int) else "the project's keys were accepted"

    def __init__(
        self,
        config: VoucherifyConfig,
        *,
        tenant: str,
        redis: Any,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        token = config.app_token.get_secret_value()
        super().__init__(
            config.base_url,
            headers={"X-App-Id": config.app_id, "X-App-Token": token, "Content-Type": "application/json"},
            timeout=timeout,
            secrets=(token,),
            session=session,
        )
        self.config = config
        self.tenant = tenant
        self.redis = redis
        self.limiter = RateLimiter(
            redis, budget_name(config.app_id), config.requests_per_minute or UNLIMITED, PLAN_WINDOW, max_wait=5.0
        )
        self.markers = AttemptMarkers(redis, tenant, self.platform)

    @classmethod
    def from_config(cls, config: VoucherifyConfig, *, tenant: str, redis: Any, timeout: float) -> VoucherifyClient:
        """The client for one tenant's table; ``redis`` holds the shared budget and attempt markers."""
        if redis is None:
            raise FatalDestinationError("voucherify delivery needs Redis", destination="voucherify")
        return cls(config, tenant=tenant, redis=redis, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call within the project's per-minute budget."""
        self.limiter.acquire()
        return super().request(method, path, **kwargs)

    def _wait_from_headers(self, response: requests.Response) -> float | None:
        retry_at = response.headers.get("X-Rate-Limit-Retry")
        if retry_at:
            try:
                return max(0.0, float(retry_at) - time.time())
            except ValueError:
                pass
        return parse_retry_after(response.headers.get("Retry-After"))

    def observe(self, response: requests.Response) -> None:
        """Rate-limit headers pause the shared budget; 401 and 402 are fatal with a reason."""
        status = response.status_code
        if status == 401:
            raise FatalDestinationError(
                f"voucherify: application keys rejected (401); check tenants.{self.tenant}.loyalty.app_id/app_token",
                destination=self.destination,
                status=401,
            )
        if status == 402:
            raise FatalDestinationError(
                "voucherify: the project's plan limit is exceeded or its subscription ended (402 Payment "
                "Required); raise the plan, then requeue the failed jobs",
                destination=self.destination,
                status=402,
                body=redact(response.text[:500], self.secrets),
            )
        if status == 429:
            wait = self._wait_from_headers(response)
            wait = 1.0 if wait is None else wait
            self.limiter.pause(wait)
            raise RetriableDestinationError(
                f"voucherify: API limit reached ({response.headers.get('X-Rate-Limit-Type', 'api_calls')}); "
                f"retry in {wait:.0f}s",
                destination=self.destination,
                status=429,
                retry_after=wait,
            )
        remaining = response.headers.get("X-Rate-Limit-Remaining")
        if remaining is not None and remaining.strip() == "0":
            wait = self._wait_from_headers(response)
            if wait:
                self.limiter.pause(wait)

    def upsert_customer(self, activity: Activity, contacts: ContactCache) -> str:
        """Customer id for the activity's person (cached; else ``POST /v1/customers`` by source_id)."""
        cached = contacts.get(activity.person.email)
        if cached:
            return cached
        answer = self.json(self.request("POST", "/v1/customers", json=customer_body(activity, self.config)))
        customer_id = str(answer.get("id") or "") if isinstance(answer, dict) else ""
        if not customer_id:
            raise FatalDestinationError("voucherify: customer answer carries no id", destination=self.destination)
        contacts.set(activity.person.email, customer_id)
        return customer_id

    def deliver(self, activity: Activity, contacts: ContactCache) -> Receipt:
        """Upsert the customer, then track the activity's custom event once."""
        if activity.type in self.config.skip_activities:
            raise UnsupportedEvent(
                f"{activity.type} is in tenants.{self.tenant}.loyalty.skip_activities", counter="skipped_by_config"
            )
        body = event_body(activity, self.config)
        customer_id = self.upsert_customer(activity, contacts)
        remote_id = f"{customer_id}:{body['event']}"
        earlier = self.markers.begin(activity)
        if earlier is not None:
            if self.find_event(customer_id, body["event"], activity.business_key, earlier):
                log.info("voucherify: %s found after an attempt of unknown outcome", body["event"])
                metrics.count(self.redis, "deliveries", destination=self.platform, outcome="found_unknown_outcome")
                return Receipt(platform=self.platform, remote_id=remote_id, created=False)
            log.warning("voucherify: re-sending %s: not found after an attempt of unknown outcome", body["event"])
            metrics.count(self.redis, "deliveries", destination=self.platform, outcome="resent_unknown_outcome")
        with self.markers.attempt(activity, first=earlier is None):
            self.request("POST", "/v1/events", json=body)
        for currency in inexact_currencies(activity):
            log.info("voucherify: %s amount sent as a decimal string (finer than hundredths)", currency)
            metrics.count(self.redis, "inexact_amounts", destination=self.platform, currency=currency)
        return Receipt(platform=self.platform, remote_id=remote_id, created=True)

    def find_event(self, customer_id: str, event_name: str, key: str, since: float) -> bool:
        """Whether the customer's activity since the first attempt (less clock slack) holds the
        custom event ``event_name`` carrying our business ``key``."""
        start = datetime.fromtimestamp(since).astimezone() - RECONCILE_SLACK
        path = f"/v1/customers/{path_segment(customer_id)}/activity"
        params: dict[str, Any] = {
            "type": CUSTOM_EVENT_ACTIVITY,
            "start_date": isoformat(start),
            "limit": RECONCILE_PAGE,
        }
        field = self.config.business_key_metadata
        for _ in range(RECONCILE_MAX_PAGES):
            try:
                page = self.json(self.request("GET", path, params=params))
            except FatalDestinationError as exc:
                if exc.status != 404:
                    raise
                raise StaleContactError(
                    f"voucherify: customer {customer_id} is unknown now (deleted at Voucherify): {exc}",
                    destination=self.destination,
                    status=404,
                    body=exc.body,
                    contact_id=customer_id,
                ) from None
            items = page.get("data") if isinstance(page, dict) else None
            if not isinstance(items, list):  # cannot tell: never guess "absent" and send twice
                raise FatalDestinationError(
                    f"voucherify: the customer activity answer has no data list; check the customer's activity for "
                    f"metadata.{field} = {key} before requeueing",
                    destination=self.destination,
                )
            if any(carries(item, event_name, field, key) for item in items):
                return True
            cursor = page.get("more_starting_after")
            if not page.get("has_more") or not cursor:
                return False
            params = {**params, "starting_after_id": cursor}
        raise RetriableDestinationError(
            "voucherify: too much customer activity to reconcile an attempt of unknown outcome; will retry",
            destination=self.destination,
        )
