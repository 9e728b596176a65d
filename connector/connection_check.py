"""The "Test connection" job of the merchant pages: one call with a tenant's *saved* settings.

The web tier never calls a vendor (the architecture test), so the Loyalty platform and Email
provider pages enqueue :func:`check` on :data:`connector.queue.CHECK_QUEUE` (worked before every
other queue, short TTLs) and wait a bounded time for its answer. The job's arguments are the
tenant's name and the role, never a secret; it builds the tenant's client as a delivery would and
asks it for its ``check_connection()``: the vendor's cheapest authenticated call (each vendor's
NOTE.md). The answer is JSON-safe, redacted with every secret of the tenant, and carries a hint of
what to fix.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from connector import jobs
from connector.errors import DestinationError, UnsupportedEvent
from connector.esps.base import build_esp_client
from connector.platforms.base import UnconfiguredPlatform
from connector.platforms.registry import build_loyalty_destination
from connector.redaction import configured_secrets, redact

log = logging.getLogger(__name__)

Role = Literal["loyalty", "email"]
ROLES: tuple[Role, ...] = ("loyalty", "email")


def hint(answer: dict[str, Any]) -> str:
    """What to fix, from the check's status (or that nothing answered)."""
    status = answer.get("status")
    if answer.get("ok") or not answer.get("checked", True):
        return ""
    if status is None:
        return (
            "the platform could not be reached: check the base URL (scheme, host, port), and that this "
            "server may connect to it (firewall, DNS)"
        )
    if status in (401, 403):
        return (
            "the key is wrong or lacks a scope: copy it again from the platform's console, with the scopes "
            "its NOTE names"
        )
    if status == 404:
        return "the base URL is wrong: compare it with the platform's API address (region, path)"
    if status == 402:
        return "the platform's plan or subscription refuses calls: see its billing page"
    if status == 410:
        return "the API version in the settings is retired: choose a current one"
    if status == 429:
        return "the platform's rate limit is reached: try again in a minute"
    if status >= 500:
        return "the platform answered with an error of its own: try again later, or see its status page"
    return "the platform refused the call: see its answer above"


def _answer(tenant_name: str, role: Role) -> dict[str, Any]:
    directory = jobs.tenants()
    directory.refresh()  # the settings saved a moment ago, not this process's copy of up to a second ago
    tenant = directory.get(tenant_name)
    if tenant is None:
        return {"ok": False, "checked": False, "said": f"tenant {tenant_name!r} is not served (see its problems)"}
    timeout = jobs.settings().http_timeout
    if role == "loyalty":
        if isinstance(tenant.loyalty, UnconfiguredPlatform):
            return {"ok": False, "checked": False, "said": "no loyalty platform is saved yet"}
        vendor = tenant.loyalty.platform
        client: Any = build_loyalty_destination(tenant, timeout=timeout, redis=jobs.redis())
    else:
        if tenant.esp is None:
            return {"ok": False, "checked": False, "said": "no email provider is saved yet"}
        vendor = tenant.esp.provider
        client = build_esp_client(tenant.esp, jobs.redis(), timeout=timeout, tenant=tenant.name)
    answer: dict[str, Any] = client.check_connection()
    answer["vendor"] = vendor
    return answer


def check(tenant: str, role: str) -> dict[str, Any]:
    """Test the tenant's saved ``role`` settings (``loyalty`` or ``email``); never raises for what
    the vendor or the settings say: the page shows the answer."""
    if role not in ROLES:
        return {"ok": False, "checked": False, "said": f"unknown role {role!r}"}
    try:
        answer = _answer(tenant, role)  # narrowed to a Role by the check above
    except (DestinationError, UnsupportedEvent) as exc:  # e.g. a client that cannot be built
        answer = {"ok": False, "checked": False, "said": str(exc)}
    answer["role"] = role
    answer["hint"] = hint(answer)
    served = jobs.tenants().get(tenant)
    secrets = configured_secrets(jobs.settings(), [served] if served is not None else [])
    safe = {k: redact(v, secrets) if isinstance(v, str) else v for k, v in answer.items()}
    log.info("connection check %s/%s: ok=%s status=%s", tenant, role, safe.get("ok"), safe.get("status"))
    return safe
