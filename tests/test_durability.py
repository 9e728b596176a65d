"""Durability of the 2xx: the embedded Redis fsyncs before it answers, an external Redis that
does not is reported (check-config, /readyz), and a SIGKILLed Redis loses no acknowledged webhook.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import SHOPIFY_SECRET, load_fixture, shopify_headers
from redis import Redis

from connector.cli import main
from connector.durability import check_durability
from connector.embedded_redis import EmbeddedRedis, free_port
from connector.queue import connect
from connector.web import create_app
from connector.worker import WORKER_CLASSES, run_worker


@pytest.fixture
def everysec(tmp_path: Path):
    server = EmbeddedRedis(tmp_path / "everysec", appendfsync="everysec").start()
    yield server
    server.stop()


def test_the_embedded_server_fsyncs_every_write_by_default(tmp_path: Path):
    server = EmbeddedRedis(tmp_path / "redis").start()
    try:
        client = Redis(port=server.port)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
        assert check_durability(client).durable is True
        client.close()
    finally:
        server.stop()


def test_appendfsync_is_selectable_and_checked(everysec: EmbeddedRedis):
    client = Redis(port=everysec.port)
    assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
    durability = check_durability(client)
    client.close()
    assert durability.durable is False
    assert durability.settings == {"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction"}
    assert "appendfsync is everysec, not always" in durability.message
    with pytest.raises(ValueError, match="appendfsync"):
        EmbeddedRedis(Path("unused"), appendfsync="sometimes")  # type: ignore[arg-type]


def test_no_append_only_file_and_an_evicting_policy_are_both_reported(redis: Redis):
    # The suite's own server runs without an append-only file (speed); a policy is set for the test.
    before = redis.config_get("maxmemory-policy")["maxmemory-policy"]
    redis.config_set("maxmemory-policy", "allkeys-lru")
    try:
        durability = check_durability(redis)
    finally:
        redis.config_set("maxmemory-policy", before)
    assert durability.durable is False
    assert "appendonly is no" in durability.message
    assert "maxmemory-policy is allkeys-lru, not noeviction" in durability.message
    assert "appendonly yes, appendfsync always, maxmemory-policy noeviction" in durability.message


def test_a_server_that_refuses_config_get_is_reported_as_unknown(everysec: EmbeddedRedis):
    admin = Redis(port=everysec.port)
    admin.execute_command("ACL", "SETUSER", "connector", "on", ">pw", "~*", "&*", "+@all", "-config")
    limited = Redis(port=everysec.port, username="connector", password="pw")
    durability = check_durability(limited)
    limited.close()
    admin.close()
    assert durability.durable is None
    assert "cannot read the server's persistence settings" in durability.message
    assert "appendfsync always" in durability.message  # what to make sure of by other means


def test_readyz_body_says_whether_acknowledged_webhooks_are_durable(client):
    response = client.get("/readyz")
    assert response.status_code == 200  # a warning, not a reason to stop taking webhooks
    assert response.json["status"] == "ready"
    assert response.json["durability"]["durable"] is False  # the suite's server: appendonly no
    assert "appendonly is no" in response.json["durability"]["message"]


def check_config(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        main(["check-config", *args])
        status = 0
    except SystemExit as exc:
        status = int(exc.code or 0) if not isinstance(exc.code, str) else 1
    captured = capsys.readouterr()
    return status, captured.out + captured.err


@pytest.fixture
def demo_env(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parent.parent
    monkeypatch.setenv("CONNECTOR_TENANTS_FILE", str(root / "config/demo-tenants.toml"))
    monkeypatch.setenv("DEMO_SHOPIFY_SECRET", "x")


def test_check_config_reports_durability(monkeypatch, capsys, demo_env, everysec, tmp_path):
    monkeypatch.setenv("REDIS_URL", everysec.url)
    status, output = check_config(monkeypatch, capsys)
    assert status == 0, output
    assert "demo: glu at" in output
    assert f"redis: {everysec.url} answers; WARNING, durability: appendfsync is everysec" in output
    durable = EmbeddedRedis(tmp_path / "always").start()
    try:
        monkeypatch.setenv("REDIS_URL", durable.url)
        status, output = check_config(monkeypatch, capsys)
    finally:
        durable.stop()
    assert status == 0, output
    assert "durability: appendonly yes, appendfsync always, maxmemory-policy noeviction" in output
    assert "WARNING" not in output


def test_check_config_flags_an_unreachable_redis_without_showing_its_password(monkeypatch, capsys, demo_env):
    port = free_port()  # nothing listens there
    monkeypatch.setenv("REDIS_URL", f"redis://:s3cret-pw@127.0.0.1:{port}/0")
    status, output = check_config(monkeypatch, capsys)
    assert status == 1
    assert f"REDIS_URL: cannot reach Redis at redis://***:***@127.0.0.1:{port}/0" in output
    assert "s3cret-pw" not in output
    status, output = check_config(monkeypatch, capsys, "--no-redis")
    assert status == 0, output


def test_check_config_lists_every_error_at_once(monkeypatch, capsys, tmp_path):
    path = tmp_path / "tenants.toml"
    path.write_text(
        '[tenants.a.loyalty]\nplatform = "glu"\nbase_url = "https://api.glu.io"\napi_key = "env:"\n'
        '[tenants.a.sources.standard]\nsecrets = ["whsec_%%%"]\n'
        '[tenants.b]\ntimezone = "Mars/Olympus"\n'
        '[tenants.b.loyalty]\nplatform = "glu"\nbase_url = "https://api.glu.io"\napi_key = "env:B_KEY_UNSET"\n'
    )
    monkeypatch.setenv("CONNECTOR_TENANTS_FILE", str(path))
    monkeypatch.setenv("REDIS_URL", "http://127.0.0.1:6379/0")
    monkeypatch.delenv("B_KEY_UNSET", raising=False)
    status, output = check_config(monkeypatch, capsys)
    assert status == 1
    assert "5 configuration errors:" in output
    for key in (
        "REDIS_URL: ",
        "tenants.a.loyalty.api_key: ",
        "tenants.a.sources.standard.secrets: ",
        "tenants.b.timezone: ",
        "tenants.b.loyalty.api_key: environment variable B_KEY_UNSET is not set",
    ):
        assert f"\n  {key}" in output, (key, output)


def test_every_acknowledged_webhook_survives_a_redis_sigkill(env, sandbox, tmp_path: Path):
    """Webhooks stream into the app; Redis is SIGKILLed mid-stream (no clean shutdown) and started
    again on the same data; a worker drains: every 2xx is delivered, once."""
    server = EmbeddedRedis(tmp_path / "redis").start()
    try:
        settings = env(REDIS_URL=server.url)
        client = create_app(settings).test_client()
        template = json.loads(load_fixture("shopify", "orders_paid"))
        answers: list[tuple[int, int]] = []  # (order id, status)
        stop = threading.Event()

        def send() -> None:
            order_id = 7_000_000_000_000
            while not stop.is_set():
                order_id += 1
                body = json.dumps({**template, "id": order_id}).encode()
                headers = shopify_headers(body, secret=SHOPIFY_SECRET, webhook_id=str(uuid.uuid4()))
                answers.append(
                    (order_id, client.post("/webhooks/harbour/shopify", data=body, headers=headers).status_code)
                )

        sender = threading.Thread(target=send)
        sender.start()
        deadline = time.monotonic() + 60
        while sum(status == 202 for _, status in answers) < 60:
            assert time.monotonic() < deadline and sender.is_alive()
            time.sleep(0.01)
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGKILL)  # mid-stream: the sender is still posting
        server.process.wait()
        while sum(status == 503 for _, status in answers) < 5:  # it noticed: nothing acknowledged
            assert time.monotonic() < deadline and sender.is_alive()
            time.sleep(0.01)
        stop.set()
        sender.join()
        server.start()  # the same directory and port: the append-only file is replayed
        redis = connect(server.url)
        run_worker(redis, burst=True, logging_level="WARNING", worker_class=WORKER_CLASSES["simple"])
        redis.close()
    finally:
        server.stop()
    acknowledged = {order_id for order_id, status in answers if status == 202}
    assert {status for _, status in answers} <= {202, 503}
    references: list[Any] = [a["externalReference"] for a in sandbox.sandboxes.glu.state()["activities"]]
    delivered = [int(ref.rsplit(":", 1)[1]) for ref in references]
    assert len(delivered) == len(set(delivered))  # nothing twice
    assert acknowledged <= set(delivered), sorted(acknowledged - set(delivered))[:10]
