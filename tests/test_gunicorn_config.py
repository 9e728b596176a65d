"""config/gunicorn.conf.py: threaded workers by default, so slow clients cannot take the intake down."""

from __future__ import annotations

import json
import os
import runpy
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SHOPIFY_SECRET, glu_tenant_toml, load_fixture, shopify_headers
from stack_helpers import gunicorn_server
from wifi_support import ingest_count

from bench.load import raw_request
from bench.slow import SlowClients, send_paced
from connector.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "gunicorn.conf.py"
OVERRIDES = ("CONNECTOR_WEB_THREADS", "CONNECTOR_WEB_WORKER_CLASS", "WEB_CONCURRENCY", "CONNECTOR_BIND", "PORT")


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, object]:
    for name in OVERRIDES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONFIG))


def test_default_is_gthread_and_the_environment_still_overrides(monkeypatch):
    default = _settings(monkeypatch)
    assert (default["worker_class"], default["threads"]) == ("gthread", 64)
    assert _settings(monkeypatch, CONNECTOR_WEB_THREADS="1")["worker_class"] == "sync"
    custom = _settings(monkeypatch, CONNECTOR_WEB_THREADS="8", WEB_CONCURRENCY="2")
    assert (custom["worker_class"], custom["threads"], custom["workers"]) == ("gthread", 8, 2)
    assert _settings(monkeypatch, CONNECTOR_WEB_WORKER_CLASS="sync")["worker_class"] == "sync"


def test_bind_follows_port_then_connector_bind(monkeypatch):
    assert _settings(monkeypatch)["bind"] == "127.0.0.1:8000"
    assert _settings(monkeypatch, CONNECTOR_BIND="127.0.0.1:9001")["bind"] == "127.0.0.1:9001"
    assert _settings(monkeypatch, PORT="5123")["bind"] == "0.0.0.0:5123"  # the Procfile's platforms
    # A Procfile runner routes to PORT only: it wins over a CONNECTOR_BIND left in the environment.
    assert _settings(monkeypatch, PORT="5123", CONNECTOR_BIND="127.0.0.1:9001")["bind"] == "0.0.0.0:5123"


def test_procfile_runs_the_web_tier_and_a_worker():
    processes = dict(
        line.split(": ", 1)
        for line in (ROOT / "Procfile").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert processes == {"web": "gunicorn -c config/gunicorn.conf.py wsgi:app", "worker": "connector worker"}


@pytest.fixture
def gunicorn(tmp_path: Path, redis_url: str, redis: object) -> Iterator[int]:
    """gunicorn with the project's config and its defaults (no override set) on a free port."""
    port = free_port()
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(
        glu_tenant_toml("harbour", "Europe/London", "http://127.0.0.1:9")
        + f'[tenants.harbour.sources.shopify]\nshop_domain = "harbour-hotels.myshopify.com"\n'
        f'secrets = ["{SHOPIFY_SECRET}"]\n'
    )
    env = {
        **{k: v for k, v in os.environ.items() if k not in OVERRIDES},
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": redis_url,
        "CONNECTOR_TENANTS_FILE": str(tenants),
        "CONNECTOR_BIND": f"127.0.0.1:{port}",
    }
    with gunicorn_server(env):
        yield port


def _order(number: int, port: int) -> bytes:
    order = json.loads(load_fixture("shopify", "orders_paid"))
    order["id"] = 800_000 + number
    body = json.dumps(order).encode()
    headers = shopify_headers(body, webhook_id=f"slow-clients-{number}")
    return raw_request("127.0.0.1", port, "/webhooks/harbour/shopify", headers, body)


def test_webhooks_are_answered_while_slow_clients_hold_connections(gunicorn, redis):
    """50 slowloris connections (headers or body trickled) against the default settings.

    With the old default (sync workers) every worker sits on a slow client and no webhook is
    answered until the attack ends; with threaded workers each slow client parks one thread.
    The deadline is generous (10 s) so a loaded machine does not make this flaky.
    """
    payloads = [_order(n, gunicorn) for n in range(20)]
    with SlowClients("127.0.0.1", gunicorn, count=50, duration=60) as slow:
        time.sleep(1.0)  # the server has taken the slow connections in
        result = send_paced("127.0.0.1", gunicorn, payloads, rate=10, deadline=10)
        opened = slow.opened
    assert result.statuses == {202: 20}
    assert ingest_count(redis) == 20
    assert opened >= 50


# -- issue 16 intake: the preloaded app's objects are frozen before each worker is forked --
def test_pre_fork_freezes_the_preloaded_objects(monkeypatch):
    import gc

    gc.unfreeze()
    try:
        _settings(monkeypatch)["pre_fork"](None, None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


# -- end issue 16 intake --
