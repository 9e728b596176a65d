"""The merchant pages' browser tests: the real stack (gunicorn with the project's config, a
``connector worker`` process, the vendor sandboxes, Redis) driven by Debian's chromium through
Playwright. ``make test`` installs chromium when it is missing (``make browser``); nothing here is
skipped without it.

``CONNECTOR_SCREENSHOTS=1 make test`` (or pytest) also writes the README's screenshots to
``docs/screenshots/`` (:func:`screenshot`).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from redis import Redis
from stack_helpers import ROOT, gunicorn_server

from bench.__main__ import process
from connector.merchant_links import make_link_token
from connector.sandbox.server import SandboxServer
from connector.settings import Settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ROOT / "docs" / "screenshots"
SECRET_KEY = "merchant-pages-test-key-0123456789abcdef"
ADMIN_PASSWORD = "support-staff-password-42"


def free_port() -> int:
    """A port nothing listens on now (the test's own gunicorn binds it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def screenshot(page: Page, name: str) -> None:
    """With ``CONNECTOR_SCREENSHOTS`` set, save the page as ``docs/screenshots/<name>.png``."""
    if os.environ.get("CONNECTOR_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@dataclass
class MerchantStack:
    """A running connector for the browser: its origin, Redis, sandboxes and settings."""

    url: str
    redis: Redis
    sandbox: SandboxServer
    settings: Settings

    def link(self, tenant: str, valid_seconds: int = 3600) -> str:
        """A sign-in link to ``tenant``'s pages (what ``connector merchant-link`` prints)."""
        return f"{self.url}/app/sign-in?token={make_link_token(SECRET_KEY, tenant, valid_seconds)}"

    def sign_in(self, page: Page, tenant: str) -> None:
        """Open a fresh link for ``tenant`` and press its Sign in button."""
        page.goto(self.link(tenant))
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(rf"/app/{re.escape(tenant)}/$"))

    def sign_in_as_admin(self, page: Page) -> None:
        """Sign in as support staff with the admin password."""
        page.goto(f"{self.url}/app/admin")
        page.get_by_label("Admin password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/app/$"))

    def create_tenant(self, name: str, timezone: str = "Europe/London") -> None:
        """A stored tenant, as ``connector tenants add`` makes it (no browser needed)."""
        from connector.tenant_store import TenantStore

        TenantStore.open(self.redis, SECRET_KEY).create(name, {"timezone": timezone})

    def wait_for(self, condition: Callable[[], Any], timeout: float = 15.0, what: str = "the condition") -> Any:
        """Poll ``condition`` until it returns something truthy (the worker runs in its own process)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """Debian's chromium, headless, for the whole session."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) and its page, phone-friendly width checked elsewhere."""
    context = chromium.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@contextmanager
def worker_process(env: dict[str, str]) -> Iterator[None]:
    """``connector worker`` (simple worker class) in its own process until the block ends."""
    argv = [sys.executable, "-m", "connector.cli", "worker", "--worker-class", "simple"]
    with process(argv, env, lambda: True, "browser-test worker"):
        yield


@pytest.fixture
def merchant_stack(
    env: Callable[..., Settings], redis: Redis, sandbox: SandboxServer, tmp_path: Path
) -> Iterator[MerchantStack]:
    """gunicorn + a worker + the sandboxes, with a stable secret key and an admin password; the
    tenants file holds the usual test tenants (harbour, marina: shown read-only)."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    settings = env(
        CONNECTOR_SECRET_KEY=SECRET_KEY,
        CONNECTOR_ADMIN_PASSWORD=ADMIN_PASSWORD,
        CONNECTOR_BIND=f"127.0.0.1:{port}",
        CONNECTOR_PUBLIC_URL=origin,
        CONNECTOR_WEB_WORKERS="2",
    )
    environment = dict(os.environ)
    with gunicorn_server(environment), worker_process(environment):
        yield MerchantStack(url=origin, redis=redis, sandbox=sandbox, settings=settings)
