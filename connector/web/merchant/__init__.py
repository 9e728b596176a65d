"""The merchant pages (``/app/…``): server-rendered Flask + Jinja, no front-end build step.

A merchant (or a hotel group an operator onboarded) connects and runs the connector here: the
loyalty platform, the sources, the email provider, and the activity with its failures to retry.
Support staff open any tenant with ``CONNECTOR_ADMIN_PASSWORD``. Tenants-file tenants are shown
read-only; stored tenants are written to :mod:`connector.tenant_store`.

Every page carries a Content-Security-Policy without inline scripts, every change is a POST with a
CSRF token (checked here for the whole blueprint), and the pages work without JavaScript (the
one script only adds copy buttons). Each section is a module of this package:

* :mod:`.signin`: sign-in link, admin sign-in, sign-out, the tenants list;
* :mod:`.overview`, :mod:`.loyalty`, :mod:`.sources`, :mod:`.email`, :mod:`.activity`.

The pages need a stable ``CONNECTOR_SECRET_KEY`` (it signs sessions and links and seals the
store); without it every page says so.
"""

from __future__ import annotations

# Importing a section registers its routes on ``bp``.
from connector.web.merchant import activity, email, loyalty, overview, signin, sources
from connector.web.merchant.blueprint import bp

__all__ = ["activity", "bp", "email", "loyalty", "overview", "signin", "sources"]
