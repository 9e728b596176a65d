"""Shopify's stand-ins: the sender of HMAC-signed webhooks (see :mod:`connector.sandbox.sender`)
and the shops' admins (OAuth, the GraphQL Admin API with its cost-based throttle)."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Blueprint, jsonify, redirect, request

from connector.sandbox.base import VendorSandbox, add_control_routes, apply_fault
from connector.sandbox.sender import JSON, SignedRequest, b64_hmac_sha256, derived, first_secret
from connector.vendors.shopify.oauth import parse_scopes, signed_query, valid_shop

WEBHOOK_FIXTURES = (
    "orders_paid",
    "orders_paid__jpy",
    "orders_paid__kwd",
    "orders_paid__guest_checkout",
    "orders_paid__bgn",
    "orders_paid__xyz",
    "orders_paid__no_email",
    "orders_paid__test",
    "orders_create",
)
IGNORED_FIXTURES = ("orders_paid__no_email", "orders_paid__test")
"""Webhooks among them that make no activity or event (pings, guests without an email, unwanted events)."""
TOPICS = ("orders/paid", "orders/create", "orders/fulfilled")


def source_table(secret: str, sandbox_url: str) -> dict[str, Any]:
    """A shop whose app secret derives from ``secret``."""
    return {
        "shop_domain": f"{derived(secret, 'shop')}.myshopify.com",
        "secrets": [derived(secret, "shpss")],
        "topics": list(TOPICS),
    }


def sign(body: bytes, table: Mapping[str, Any], n: int) -> SignedRequest:
    """Shopify's headers: base64 HMAC-SHA256 of the body, topic, shop and webhook id."""
    topics = table.get("topics") or ["orders/paid"]
    headers = {
        "Content-Type": JSON,
        "X-Shopify-Topic": str(topics[n % len(topics)]),
        "X-Shopify-Hmac-Sha256": b64_hmac_sha256(body, first_secret(table)),
        "X-Shopify-Shop-Domain": str(table["shop_domain"]),
        "X-Shopify-Webhook-Id": f"sandbox-{n}",
    }
    return SignedRequest("", headers, body)


# The Admin API side: a stand-in for the shops' admins, served under /shopify/<shop>/admin/…
# (tests set CONNECTOR_SHOPIFY_ADMIN_URL to "<sandbox>/shopify/{shop}"). GraphQL operations are
# answered by the handlers in GRAPHQL_HANDLERS, chosen by the first field the query selects.

GraphqlHandler = Callable[["ShopifySandbox", str, dict[str, Any]], dict[str, Any]]
GRAPHQL_HANDLERS: dict[str, GraphqlHandler] = {}
"""Root field (``webhookSubscriptions``, ``webhookSubscriptionCreate``, ``orders``…) → handler
returning the ``data`` of the answer (the sandbox adds ``extensions.cost``)."""
ROOT_FIELD = re.compile(r"^\s*(?:query|mutation)?\s*\w*\s*(?:\([^)]*\))?\s*\{\s*(\w+)", re.S)
INVALID_TOKEN_ERROR = "[API] Invalid API key or access token (unrecognized login or wrong password)"  # noqa: S105
QUERY_COST = 10.0
"""Points every sandbox query costs (a real query's cost depends on what it selects)."""


def graphql_handler(field: str) -> Callable[[GraphqlHandler], GraphqlHandler]:
    """Register the handler of the GraphQL root ``field``."""

    def register(handler: GraphqlHandler) -> GraphqlHandler:
        GRAPHQL_HANDLERS[field] = handler
        return handler

    return register


class ShopifySandbox(VendorSandbox):
    """Shops' admins: OAuth (authorize, code exchange), GraphQL, and a control that sends signed
    webhooks to the connector as Shopify would. State per shop: tokens, subscriptions, orders."""

    vendor = "shopify"

    def __init__(self, api_key: str, api_secret: str) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.public_url: str | None = None  # the app's origin; else CONNECTOR_PUBLIC_URL at each request
        self.throttle_available = 1000.0  # points, refilled at restore_rate per second
        self.maximum_available = 1000.0
        self.restore_rate = 50.0
        self.refilled_at = time.monotonic()
        super().__init__()

    def refill(self) -> float:
        """The points available now: refilled at ``restore_rate`` per second up to the maximum
        (call with the lock held)."""
        now = time.monotonic()
        self.throttle_available = min(
            self.maximum_available, self.throttle_available + (now - self.refilled_at) * self.restore_rate
        )
        self.refilled_at = now
        return self.throttle_available

    def reset(self) -> None:
        """Forget every shop."""
        with self.lock:
            self.codes: dict[str, dict[str, Any]] = {}  # code → {shop, scopes, used}
            self.tokens: dict[str, dict[str, Any]] = {}  # token → {shop, scopes}
            self.subscriptions: dict[str, list[dict[str, Any]]] = {}  # shop → subscriptions
            self.orders: dict[str, list[dict[str, Any]]] = {}  # shop → orders (GraphQL shape)
            self.graphql_calls: list[dict[str, Any]] = []
            self.sent: list[dict[str, Any]] = []  # webhooks sent to the connector
            self.throttle_available = self.maximum_available
            # -- the install flow (issue 13): scopes the next grant returns instead of the requested ones
            self.next_grant_scopes: list[str] | None = None
            self.timezones: dict[str, str] = {}  # shop → ianaTimezone (default SHOP_TIMEZONE)

    def state(self) -> dict[str, Any]:
        """What the shops hold."""
        with self.lock:
            return {
                "tokens": [{"shop": t["shop"], "scopes": t["scopes"]} for t in self.tokens.values()],
                "subscriptions": self.subscriptions,
                "orders": {shop: len(orders) for shop, orders in self.orders.items()},
                "graphql_calls": list(self.graphql_calls),
                "sent": list(self.sent),
            }

    def shop_of_token(self, token: str | None) -> str | None:
        """The shop an access token belongs to."""
        grant = self.tokens.get(token or "")
        return str(grant["shop"]) if grant else None

    def sign_webhook(self, body: bytes) -> str:
        """``X-Shopify-Hmac-Sha256`` of a body, signed with the app secret."""
        return b64_hmac_sha256(body, self.api_secret)

    def blueprint(self) -> Blueprint:
        """The control routes and :func:`add_admin_routes`."""
        bp = Blueprint("shopify_sandbox", __name__)
        add_control_routes(bp, self.faults, self.state, self.reset)

        @bp.post("/_sandbox/throttle")
        def _throttle() -> Any:  # {"available": 0} makes the next queries THROTTLED
            body = request.get_json(force=True) or {}
            with self.lock:
                self.throttle_available = float(body.get("available", self.maximum_available))
                self.restore_rate = float(body.get("restore_rate", self.restore_rate))
                self.refilled_at = time.monotonic()
            return jsonify({"available": self.throttle_available, "restore_rate": self.restore_rate})

        add_admin_routes(self, bp)
        add_send_routes(self, bp)  # the webhook sender control (see below)
        add_orders_control(self, bp)
        add_oauth_routes(self, bp)  # the install flow (issue 13)
        return bp


def add_admin_routes(sandbox: ShopifySandbox, bp: Blueprint) -> None:
    """``POST /<shop>/admin/api/<version>/graphql.json`` (dispatching to :data:`GRAPHQL_HANDLERS`).

    OAuth and the webhook control add their own routes next to this one (see the helpers below).
    """

    @bp.post("/<shop>/admin/api/<version>/graphql.json")
    def graphql(shop: str, version: str) -> Any:
        token = request.headers.get("X-Shopify-Access-Token")
        if sandbox.shop_of_token(token) != shop:
            return jsonify(
                {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
            ), 401
        faulty = apply_fault(sandbox.faults, lambda status: {"errors": f"injected {status}"})
        if faulty is not None:
            return faulty
        body = request.get_json(silent=True) or {}
        query = str(body.get("query") or "")
        variables = body.get("variables") or {}
        match = ROOT_FIELD.match(query)
        field = match.group(1) if match else ""
        with sandbox.lock:
            available = sandbox.refill()
            throttled = available < QUERY_COST
            call = {"shop": shop, "field": field, "variables": variables, "version": version, "throttled": throttled}
            sandbox.graphql_calls.append(call)
        throttle_status = {
            "maximumAvailable": sandbox.maximum_available,
            "currentlyAvailable": available if throttled else available - QUERY_COST,
            "restoreRate": sandbox.restore_rate,
        }
        cost = {"requestedQueryCost": QUERY_COST, "actualQueryCost": QUERY_COST, "throttleStatus": throttle_status}
        if throttled:
            error = {"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": ""}}
            return jsonify({"errors": [error], "extensions": {"cost": cost}})
        handler = GRAPHQL_HANDLERS.get(field)
        if handler is None:
            return jsonify({"errors": [{"message": f"Field '{field}' doesn't exist on type 'QueryRoot'"}]})
        with sandbox.lock:
            sandbox.throttle_available = available - QUERY_COST
        return jsonify({"data": handler(sandbox, shop, variables), "extensions": {"cost": cost}})


# --- Webhook sender control: POST /shopify/_sandbox/send (app/uninstalled, compliance, orders) ---

SEND_API_VERSION = "2026-10"


def webhook_headers(sandbox: ShopifySandbox, body: bytes, topic: str, shop: str, n: int) -> dict[str, str]:
    """The headers Shopify sends with an app webhook, signed with the app secret."""
    webhook_id = f"sandbox-app-{uuid.uuid4()}"
    return {
        "Content-Type": JSON,
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sandbox.sign_webhook(body),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Event-Id": str(uuid.uuid5(uuid.NAMESPACE_URL, webhook_id)),
        "X-Shopify-Api-Version": SEND_API_VERSION,
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


def add_send_routes(sandbox: ShopifySandbox, bp: Blueprint) -> None:
    """``POST /_sandbox/send {"url", "topic", "shop", "payload", "hmac"?}``: sign ``payload`` with the
    app secret and POST it to ``url`` (the connector's ``/shopify/webhooks``) with Shopify's
    headers; recorded in ``sent``; answers the connector's status and body. ``"hmac": "bad"``
    sends a wrong signature (the compliance check Shopify runs on an app)."""

    @bp.post("/_sandbox/send")
    def _send() -> Any:
        spec = request.get_json(force=True) or {}
        url, topic, shop = (spec.get(name) for name in ("url", "topic", "shop"))
        if not (isinstance(url, str) and isinstance(topic, str) and isinstance(shop, str) and url and topic and shop):
            return jsonify({"error": "url, topic and shop are required"}), 400
        body = json.dumps(spec.get("payload") or {}).encode()
        with sandbox.lock:
            n = len(sandbox.sent)
        headers = webhook_headers(sandbox, body, topic, shop, n)
        if spec.get("hmac") == "bad":
            headers["X-Shopify-Hmac-Sha256"] = b64_hmac_sha256(body, "not-the-app-secret")
        elif spec.get("hmac") == "missing":
            del headers["X-Shopify-Hmac-Sha256"]
        try:
            answer = requests.post(url, data=body, headers=headers, timeout=10)
        except requests.RequestException as exc:
            return jsonify({"error": f"the connector could not be reached: {type(exc).__name__}"}), 502
        try:
            answered: Any = answer.json()
        except ValueError:
            answered = answer.text[:2000]
        record = {
            "topic": topic,
            "shop": shop,
            "webhook_id": headers["X-Shopify-Webhook-Id"],
            "status": answer.status_code,
            "body": answered,
        }
        with sandbox.lock:
            sandbox.sent.append(record)
        return jsonify(record)


# --- end webhook sender control ---


# -- orders (reconciliation and backfill, issue 13) -------------------------------------------
# The ``orders`` query: the shop's seeded orders (GraphQL shape) filtered by the ``updated_at``
# terms of the search ``query`` variable, sorted by ``updatedAt`` (then id), ``first`` per page,
# with opaque cursors; ``POST /shopify/_sandbox/orders {"shop": …, "orders": [...]}`` seeds them.

ORDERS_TERM = re.compile(r"updated_at:(>=|<=|>|<)'?([0-9T:.+\-Z]+)'?")


def _moment(value: object) -> datetime:
    text = str(value or "1970-01-01T00:00:00Z").strip()
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _order_key(order: Mapping[str, Any]) -> tuple[datetime, str]:
    return _moment(order.get("updatedAt")), str(order.get("id"))


def orders_cursor(order: Mapping[str, Any]) -> str:
    """The opaque cursor after ``order``."""
    moment, gid = _order_key(order)
    return base64.urlsafe_b64encode(json.dumps([moment.isoformat(), gid]).encode()).decode()


def _after(cursor: str) -> tuple[datetime, str]:
    moment, gid = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    return datetime.fromisoformat(moment), str(gid)


def _matches(order: Mapping[str, Any], terms: list[tuple[str, str]]) -> bool:
    updated = _moment(order.get("updatedAt"))
    checks = {
        ">=": lambda at: updated >= at,
        "<=": lambda at: updated <= at,
        ">": lambda at: updated > at,
        "<": lambda at: updated < at,
    }
    return all(checks[op](_moment(value)) for op, value in terms)


@graphql_handler("orders")
def orders_handler(sandbox: ShopifySandbox, shop: str, variables: dict[str, Any]) -> dict[str, Any]:
    """``orders(first, after, query, sortKey: UPDATED_AT)`` over the seeded orders."""
    terms = ORDERS_TERM.findall(str(variables.get("query") or ""))
    first = max(1, min(int(variables.get("first") or 50), 250))
    after = variables.get("after")
    with sandbox.lock:
        orders = sorted((o for o in sandbox.orders.get(shop, []) if _matches(o, terms)), key=_order_key)
    if after:
        start = _after(str(after))
        orders = [o for o in orders if _order_key(o) > start]
    page, more = orders[:first], len(orders) > first
    return {
        "orders": {
            "nodes": page,
            "pageInfo": {"hasNextPage": more, "endCursor": orders_cursor(page[-1]) if page else None},
        }
    }


def add_orders_control(sandbox: ShopifySandbox, bp: Blueprint) -> None:
    """``POST /_sandbox/orders {"shop": …, "orders": [...]}``: add (or replace, by id) a shop's orders."""

    @bp.post("/_sandbox/orders")
    def _seed_orders() -> Any:
        body = request.get_json(force=True) or {}
        shop = str(body.get("shop") or "")
        given = [o for o in body.get("orders") or [] if isinstance(o, dict)]
        with sandbox.lock:
            kept = [o for o in sandbox.orders.get(shop, []) if o.get("id") not in {g.get("id") for g in given}]
            sandbox.orders[shop] = kept + given
            count = len(sandbox.orders[shop])
        return jsonify({"shop": shop, "orders": count})


# -- end of orders ------------------------------------------------------------------------------


KEYS: dict[str, str] = {"shopify_api_key": "sandbox-shopify-app", "shopify_api_secret": "sandbox-shopify-app-secret"}
"""The app credentials this sandbox knows unless the server is given others (``DEFAULT_KEYS``)."""


def create(keys: Mapping[str, str]) -> ShopifySandbox:
    """The sandbox, for the app with the credentials in ``keys`` (see :data:`KEYS`)."""
    return ShopifySandbox(keys["shopify_api_key"], keys["shopify_api_secret"])


# -- the install flow (issue 13): OAuth authorize and code exchange, the subscription and shop
# GraphQL calls, and the controls that shape the next grant and link to a fresh install. --------

SHOP_TIMEZONE = "America/Toronto"
"""The ``ianaTimezone`` of a sandbox shop unless ``timezones`` says otherwise."""
WEBHOOK_TOPICS = frozenset({"ORDERS_PAID", "ORDERS_CREATE", "ORDERS_UPDATED", "APP_UNINSTALLED"})
"""The ``WebhookSubscriptionTopic`` values the sandbox accepts (a real shop knows many more)."""


def connector_public_url(sandbox: ShopifySandbox) -> str | None:
    """Where the app lives: the redirect URIs the sandbox accepts start with it (Shopify checks
    them against the app's allowed redirection URLs). Read per request: tests set it late."""
    return sandbox.public_url or os.environ.get("CONNECTOR_PUBLIC_URL") or None


def add_oauth_routes(sandbox: ShopifySandbox, bp: Blueprint) -> None:
    """``GET /<shop>/admin/oauth/authorize``, ``POST /<shop>/admin/oauth/access_token`` and the
    controls ``POST /_sandbox/grant_scopes`` and ``GET /_sandbox/install``."""

    @bp.get("/<shop>/admin/oauth/authorize")
    def authorize(shop: str) -> Any:  # the merchant approves at once
        args = request.args
        if valid_shop(shop) is None:
            return jsonify({"error": "invalid_shop"}), 400
        if args.get("client_id") != sandbox.api_key:
            return jsonify({"error": "invalid_request", "error_description": "unknown client_id"}), 400
        public = connector_public_url(sandbox)
        redirect_uri = args.get("redirect_uri") or ""
        if not public or not (redirect_uri == public or redirect_uri.startswith(f"{public.rstrip('/')}/")):
            return jsonify({"error": "invalid_request", "error_description": "redirect_uri is not allowed"}), 400
        requested = list(parse_scopes(args.get("scope") or ""))
        code = secrets.token_hex(16)
        with sandbox.lock:
            granted = sandbox.next_grant_scopes if sandbox.next_grant_scopes is not None else requested
            sandbox.next_grant_scopes = None
            sandbox.codes[code] = {"shop": shop.lower(), "scopes": list(granted), "used": False}
        params = {
            "code": code,
            "shop": shop.lower(),
            "state": args.get("state") or "",
            "timestamp": str(int(time.time())),
        }
        params["host"] = "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUv"  # base64 of admin.shopify.com/store/ (signed too)
        return redirect(f"{redirect_uri}?{signed_query(params, sandbox.api_secret)}", code=302)

    @bp.post("/<shop>/admin/oauth/access_token")
    def access_token(shop: str) -> Any:  # a code is exchanged once, by the app that owns it
        body = request.get_json(silent=True) or request.form.to_dict()
        if body.get("client_id") != sandbox.api_key or body.get("client_secret") != sandbox.api_secret:
            return jsonify({"error": "invalid_client", "error_description": "wrong client credentials"}), 400
        with sandbox.lock:
            grant = sandbox.codes.get(str(body.get("code") or ""))
            if grant is None or grant["used"] or grant["shop"] != shop.lower():
                return jsonify({"error": "invalid_request", "error_description": "unknown or used code"}), 400
            grant["used"] = True
            token = f"shpat_{secrets.token_hex(16)}"
            sandbox.tokens[token] = {"shop": grant["shop"], "scopes": grant["scopes"]}
        return jsonify({"access_token": token, "scope": ",".join(grant["scopes"])})

    @bp.post("/_sandbox/grant_scopes")
    def _grant_scopes() -> Any:  # {"scopes": "read_orders"}: the next grant returns only those
        scopes = (request.get_json(force=True) or {}).get("scopes")
        with sandbox.lock:
            sandbox.next_grant_scopes = None if scopes is None else list(parse_scopes(scopes))
        return jsonify({"next_grant_scopes": sandbox.next_grant_scopes})

    @bp.get("/_sandbox/install")
    def _install() -> Any:  # the shop admin's "install app": a freshly signed App URL request
        shop = valid_shop(request.args.get("shop") or "demo-app-shop.myshopify.com")
        public = connector_public_url(sandbox)
        if shop is None or not public:
            return jsonify({"error": "a valid shop and CONNECTOR_PUBLIC_URL are needed"}), 400
        return redirect(install_link(public, sandbox.api_secret, shop), code=302)


def install_link(public_url: str, secret: str, shop: str, *, now: float | None = None) -> str:
    """``{public}/shopify/install?hmac=…&shop=…&timestamp=…`` as Shopify opens the App URL."""
    params = {"shop": shop, "timestamp": str(int(time.time() if now is None else now))}
    return f"{public_url.rstrip('/')}/shopify/install?{signed_query(params, secret)}"


@graphql_handler("webhookSubscriptions")
def _webhook_subscriptions(sandbox: ShopifySandbox, shop: str, variables: dict[str, Any]) -> dict[str, Any]:
    first = int(variables.get("first") or 50)
    after = variables.get("after")
    with sandbox.lock:
        subscriptions = list(sandbox.subscriptions.get(shop, []))
    start = next((i + 1 for i, s in enumerate(subscriptions) if s["id"] == after), 0) if after else 0
    page = subscriptions[start : start + first]
    more = start + first < len(subscriptions)
    return {
        "webhookSubscriptions": {
            "edges": [{"cursor": s["id"], "node": dict(s)} for s in page],
            "pageInfo": {"hasNextPage": more, "endCursor": page[-1]["id"] if page else None},
        }
    }


@graphql_handler("webhookSubscriptionCreate")
def _webhook_subscription_create(sandbox: ShopifySandbox, shop: str, variables: dict[str, Any]) -> dict[str, Any]:
    topic = str(variables.get("topic") or "")
    uri = str((variables.get("webhookSubscription") or {}).get("uri") or "")

    def failed(field: list[str], message: str) -> dict[str, Any]:
        return {
            "webhookSubscriptionCreate": {
                "webhookSubscription": None,
                "userErrors": [{"field": field, "message": message}],
            }
        }

    if topic not in WEBHOOK_TOPICS:
        return failed(["topic"], f"Topic '{topic}' is not supported")
    if not uri.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        return failed(["webhookSubscription", "uri"], "Address protocol http:// is not supported")
    with sandbox.lock:
        subscriptions = sandbox.subscriptions.setdefault(shop, [])
        if any(s["topic"] == topic and s["uri"] == uri for s in subscriptions):
            return failed(["webhookSubscription", "uri"], "Address for this topic has already been taken")
        created = {"id": f"gid://shopify/WebhookSubscription/{len(subscriptions) + 1}", "topic": topic, "uri": uri}
        subscriptions.append(created)
    return {"webhookSubscriptionCreate": {"webhookSubscription": dict(created), "userErrors": []}}


@graphql_handler("shop")
def _shop(sandbox: ShopifySandbox, shop: str, variables: dict[str, Any]) -> dict[str, Any]:
    with sandbox.lock:
        zone = sandbox.timezones.get(shop, SHOP_TIMEZONE)
    return {"shop": {"ianaTimezone": zone, "myshopifyDomain": shop}}


# -- end of the install flow (issue 13) --------------------------------------------------------
