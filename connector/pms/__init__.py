"""PMS API clients the worker uses to enrich thin webhooks (all on the one ``HttpClient`` base).

A thin-event source adapter has a pure ``references(envelope, payload, config)`` method naming
the reservation ids a message refers to (each once, in order). :func:`fetch` calls that PMS's
API for them and returns a JSON-safe ``fetched`` document; the adapter's pure ``to_activities``
then receives ``{"message": <webhook body>, "fetched": <that document>}``. API failures raise
the spine's destination errors, so the ingest job follows the one retry policy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connector.errors import PayloadError
from connector.pms import apaleo, cloudbeds, mews

Fetcher = Callable[[Any, list[str], float], dict[str, Any]]

FETCHERS: dict[str, Fetcher] = {
    "mews": mews.fetch,
    "apaleo": apaleo.fetch,
    "cloudbeds": cloudbeds.fetch,
}


def fetch(source: str, config: Any, references: list[str], *, timeout: float = 10.0) -> dict[str, Any]:
    """Fetch what ``references`` name from the source's PMS API (each id once)."""
    fetcher = FETCHERS.get(source)
    if fetcher is None:
        raise PayloadError(f"source {source} has no PMS API client")
    unique = list(dict.fromkeys(references))
    return fetcher(config, unique, timeout)
