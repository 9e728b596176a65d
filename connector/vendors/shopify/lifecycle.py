"""What an uninstalled Shopify shop means to the jobs: they end ``ignored`` with a reason.

``app/uninstalled`` marks the installation uninstalled (its token deleted at once, see
:meth:`~connector.vendors.shopify.installations.InstallationStore.mark_uninstalled`); the tenant
directory stops serving it. A job of that tenant still queued then finds no tenant: instead of
failing it as a removed tenant, the job layer asks :func:`uninstalled_reason` and ends it ignored.
"""

from __future__ import annotations

from connector.vendors.shopify.installations import InstallationStore

UNINSTALLED_COUNTER = "app_uninstalled"


def uninstalled_reason(store: InstallationStore | None, tenant: str) -> str | None:
    """ "the shop uninstalled the app at …" when ``tenant`` is a shop that uninstalled the app."""
    if store is None:
        return None
    for installation in store.all():
        if installation.tenant == tenant and not installation.installed:
            return f"the shop uninstalled the app at {installation.uninstalled_at}"
    return None
