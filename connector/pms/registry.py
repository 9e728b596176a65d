"""The PMS API registry: the API client (and sandbox) of each thin-event source, by source slug.

A thin-event source's pure ``references(envelope, payload, config)`` names the reservation ids a
message refers to (each once, in order). :func:`fetch` calls that PMS's API for them and returns
a JSON-safe ``fetched`` document; the source's pure ``to_activities`` then receives
``{"message": <webhook body>, "fetched": <that document>}``. API failures raise the spine's
destination errors, so the ingest job follows the one retry policy. The API is configured in the
source's own table (``connector.vendors.<pms>.source``), so a registration's model is that one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connector.errors import PayloadError
from connector.parts import Registration, by_name, vendor_parts
from connector.sources.base import SourceConfig
from connector.sources.registry import SOURCES

Fetcher = Callable[[Any, list[str], float], dict[str, Any]]

PMS_APIS: dict[str, Registration[SourceConfig]] = by_name(
    Registration(name, SOURCES[name].config_model, *vendor_parts(name, "pms", "fetch"))
    for name in ("mews", "apaleo", "cloudbeds")
)


def fetch(source: str, config: Any, references: list[str], *, timeout: float = 10.0) -> dict[str, Any]:
    """Fetch what ``references`` name from the source's PMS API (each id once)."""
    registration = PMS_APIS.get(source)
    if registration is None:
        raise PayloadError(f"source {source} has no PMS API client")
    fetcher: Fetcher = registration.client.load()
    unique = list(dict.fromkeys(references))
    return fetcher(config, unique, timeout)
