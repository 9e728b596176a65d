"""Paging through a shop's orders with the GraphQL Admin API, within its cost-based throttle.

Docs: shopify.dev GraphQL Admin ``orders`` query (``first``, ``after``, ``query`` in Shopify's
search syntax, e.g. ``updated_at:>='2026-11-23T09:00:00Z'``, ``sortKey: UPDATED_AT``; the
connection's ``pageInfo { hasNextPage endCursor }``) and "Shopify API rate limits" (every answer's
``extensions.cost.throttleStatus``; an over-budget query is answered ``THROTTLED``).

Before each page, when the last answer's throttle status says the next page's cost is not
available, the pager sleeps until it is (bounded by :data:`MAX_WAIT`). A ``THROTTLED`` answer or a
429/5xx (``RetriableDestinationError``) is waited out (``retry_after``, bounded) and the page asked
again up to :data:`PAGE_ATTEMPTS` times; after that the error goes to the job's retry policy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from connector.errors import FatalDestinationError, RetriableDestinationError
from connector.vendors.shopify.admin import ShopifyAdminClient
from connector.vendors.shopify.order_shape import ORDER_FIELDS

log = logging.getLogger(__name__)

PAGE_SIZE = 50
PAGE_ATTEMPTS = 4
"""Tries of one page (the first and three after a THROTTLED / 429 / 5xx) before the job's own retry."""
MAX_WAIT = 30.0
"""The longest the pager sleeps in one go for the throttle (seconds)."""
ESTIMATED_PAGE_COST = 2.0 + PAGE_SIZE * 1.0
"""What the pager expects a page to cost before asking (Shopify's estimate: 2 for the
connection plus one per node of a flat selection; the answer's ``requestedQueryCost`` is the truth)."""

ORDERS_QUERY = (
    "query ConnectorOrders($first: Int!, $after: String, $query: String) {\n"
    "  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {\n"
    "    nodes {" + ORDER_FIELDS + "    }\n"
    "    pageInfo { hasNextPage endCursor }\n"
    "  }\n"
    "}\n"
)


def search_query(since: str, until: str | None = None) -> str:
    """Shopify's search syntax for orders updated at or after ``since`` (and at or before ``until``)."""
    terms = [f"updated_at:>='{since}'"]
    if until:
        terms.append(f"updated_at:<='{until}'")
    return " AND ".join(terms)


@dataclass(frozen=True)
class OrdersPage:
    """One page of orders (GraphQL ``Order`` nodes) and where the next one starts."""

    nodes: list[dict[str, Any]]
    has_next: bool
    cursor: str | None


def _page(data: dict[str, Any]) -> OrdersPage:
    connection = data.get("orders")
    if not isinstance(connection, dict):
        raise FatalDestinationError("shopify: the orders answer has no orders connection", destination="shopify")
    nodes = [n for n in connection.get("nodes") or [] if isinstance(n, dict)]
    info = connection.get("pageInfo") or {}
    cursor = info.get("endCursor")
    return OrdersPage(nodes, bool(info.get("hasNextPage")) and isinstance(cursor, str), cursor)


def fetch_page(
    client: ShopifyAdminClient,
    query: str,
    after: str | None,
    *,
    page_size: int = PAGE_SIZE,
    sleep: Callable[[float], None] = time.sleep,
) -> OrdersPage:
    """One page, within the throttle (see the module docstring)."""
    variables: dict[str, Any] = {"first": page_size, "after": after, "query": query}
    for attempt in range(1, PAGE_ATTEMPTS + 1):
        throttle = client.throttle
        if throttle is not None:
            wait = throttle.wait_for(ESTIMATED_PAGE_COST)
            if wait > 0:
                sleep(min(wait, MAX_WAIT))
        try:
            return _page(client.graphql(ORDERS_QUERY, variables))
        except RetriableDestinationError as exc:
            if attempt == PAGE_ATTEMPTS:
                raise
            wait = min(exc.retry_after if exc.retry_after is not None else float(attempt), MAX_WAIT)
            log.info("shopify orders page: %s; asking again in %.1fs", exc, wait)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def iter_pages(
    client: ShopifyAdminClient,
    query: str,
    *,
    page_size: int = PAGE_SIZE,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[OrdersPage]:
    """Every page of orders matching ``query`` (Shopify search syntax), oldest update first."""
    after: str | None = None
    while True:
        page = fetch_page(client, query, after, page_size=page_size, sleep=sleep)
        yield page
        if not page.has_next:
            return
        after = page.cursor
