"""The Shopify Admin API client: the OAuth code exchange and GraphQL calls, on the one HTTP base.

Docs: shopify.dev "Implement authorization code grant manually" (``POST
{shop}/admin/oauth/access_token``), the GraphQL Admin API (``POST
{shop}/admin/api/{version}/graphql.json`` with ``X-Shopify-Access-Token``) and "Shopify API rate
limits" (cost-based: every answer's ``extensions.cost.throttleStatus`` has ``maximumAvailable``,
``currentlyAvailable`` and ``restoreRate`` points per second; an over-budget query is answered
with an ``errors[].extensions.code`` of ``THROTTLED``, HTTP 200). The admin origin is
``CONNECTOR_SHOPIFY_ADMIN_URL`` with ``{shop}`` filled in, so the sandbox stands in for a shop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from connector.errors import FatalDestinationError, RetriableDestinationError
from connector.http import HttpClient, redact


@dataclass(frozen=True)
class Grant:
    """What the code exchange returned: the shop's offline access token and its granted scopes."""

    token: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class Throttle:
    """The cost budget after the last GraphQL answer (``extensions.cost.throttleStatus``)."""

    maximum: float
    available: float
    restore_rate: float

    def wait_for(self, cost: float) -> float:
        """Seconds until ``cost`` points are available again (0 when they are now)."""
        missing = cost - self.available
        if missing <= 0 or self.restore_rate <= 0:
            return 0.0
        return missing / self.restore_rate


class ShopifyAdminClient(HttpClient):
    """One shop's Admin API (the token is ``None`` until the code exchange)."""

    destination = "shopify"

    def __init__(self, admin_origin: str, *, api_version: str, token: str | None = None, timeout: float = 10.0) -> None:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["X-Shopify-Access-Token"] = token
        super().__init__(admin_origin, headers=headers, timeout=timeout, secrets=(token,) if token else ())
        self.api_version = api_version
        self.throttle: Throttle | None = None

    def exchange_code(self, client_id: str, client_secret: str, code: str) -> Grant:
        """Exchange an authorization ``code`` for the shop's access token (once per code)."""
        self.secrets = (*self.secrets, client_secret, code)
        response = self.request(
            "POST",
            "/admin/oauth/access_token",
            json={"client_id": client_id, "client_secret": client_secret, "code": code},
        )
        answer = self.json(response)
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise FatalDestinationError("shopify: the code exchange returned no access_token", destination="shopify")
        scope = answer.get("scope") if isinstance(answer, dict) else ""
        scopes = tuple(sorted({s.strip() for s in str(scope or "").split(",") if s.strip()}))
        self.secrets = (*self.secrets, token)
        return Grant(token=token, scopes=scopes)

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``data`` of one GraphQL call; the throttle status is kept in :attr:`throttle`.

        Raises:
            RetriableDestinationError: ``THROTTLED`` (with the seconds until the cost is restored)
                or the shared mappings (429, 5xx, lost connections).
            FatalDestinationError: any other GraphQL error, with the errors kept (redacted).
        """
        path = f"/admin/api/{self.api_version}/graphql.json"
        response = self.request("POST", path, json={"query": query, "variables": variables or {}})
        answer = self.json(response)
        if not isinstance(answer, dict):
            raise FatalDestinationError("shopify: GraphQL answer is not an object", destination="shopify")
        cost = (answer.get("extensions") or {}).get("cost") or {}
        status = cost.get("throttleStatus") or {}
        if status:
            self.throttle = Throttle(
                maximum=float(status.get("maximumAvailable", 0)),
                available=float(status.get("currentlyAvailable", 0)),
                restore_rate=float(status.get("restoreRate", 0)),
            )
        errors = answer.get("errors") or []
        if errors:
            codes = {str((e.get("extensions") or {}).get("code", "")) for e in errors if isinstance(e, dict)}
            detail = redact(str(errors)[:2000], self.secrets)
            if "THROTTLED" in codes:
                requested = float(cost.get("requestedQueryCost") or 0)
                wait = self.throttle.wait_for(requested) if self.throttle else 1.0
                raise RetriableDestinationError(
                    f"shopify: GraphQL THROTTLED, cost restored in {wait:.1f}s",
                    destination="shopify",
                    status=response.status_code,
                    retry_after=max(wait, 1.0),
                )
            raise FatalDestinationError(
                f"shopify: GraphQL errors: {detail}", destination="shopify", status=response.status_code, body=detail
            )
        data = answer.get("data")
        if not isinstance(data, dict):
            raise FatalDestinationError("shopify: GraphQL answer has no data", destination="shopify")
        return data

    def retry_after_hint(self, response: requests.Response) -> float | None:
        """Shopify's 429 carries ``Retry-After`` (seconds)."""
        return super().retry_after_hint(response)
