"""REDIS_URL naming a Sentinel set: every client finds the primary, and follows a real failover.

A private set per test module: a primary and a replica (``redis-server``) and one sentinel
(``redis-server --sentinel``), each on a port this module opened, with its files in a tmp dir.
Nothing here talks to any other Redis (the machine's 127.0.0.1:6379 included).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from conftest import load_fixture, shopify_headers
from redis import Redis

from connector.embedded_redis import free_port, redis_server_binary
from connector.errors import ConfigError
from connector.queue import connect
from connector.redaction import configured_secrets
from connector.redis_url import SentinelTarget, parse_sentinel_url
from connector.settings import load_settings
from connector.web import create_app
from connector.worker import run_worker

SERVICE = "connector-primary"
DATA_PASSWORD = "data-secret/with@odd:chars"  # requirepass of the primary and the replica
SENTINEL_PASSWORD = "sentinel-secret"  # requirepass of the sentinel itself


def _binary() -> str:
    return shutil.which("redis-server") or redis_server_binary()


def _wait(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:  # noqa: S110 - a server still starting refuses connections
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class SentinelSet:
    """The ports of the set this module started."""

    primary: int
    replica: int
    sentinel: int

    @property
    def url(self) -> str:
        return (
            f"redis+sentinel://:{quote(DATA_PASSWORD, safe='')}@127.0.0.1:{self.sentinel}/{SERVICE}/0"
            f"?sentinel_password={SENTINEL_PASSWORD}"
        )

    def direct(self, port: int) -> Redis:
        password = SENTINEL_PASSWORD if port == self.sentinel else DATA_PASSWORD
        return Redis(port=port, password=password, socket_connect_timeout=1, socket_timeout=2)

    def master_port(self) -> int:
        _host, port = self.direct(self.sentinel).execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(port)

    def role(self, port: int) -> str:
        return str(self.direct(port).execute_command("ROLE")[0].decode())

    def replica_in_sync(self) -> bool:
        """The primary streams to its replica (a sentinel started now sees it at its first INFO)."""
        info = self.direct(self.primary).info("replication")
        return bool(info.get("connected_slaves")) and info["slave0"]["state"] == "online"

    def replica_ready(self) -> bool:
        """The sentinel knows the replica and the replica is in sync (a failover can pick it)."""
        replicas = self.direct(self.sentinel).execute_command("SENTINEL", "REPLICAS", SERVICE)
        for fields in replicas:  # redis-py parses each entry into a dict of bytes
            flags = fields[b"flags"].decode()
            if "s_down" not in flags and "disconnected" not in flags and fields[b"master-link-status"] == b"ok":
                return True
        return False


@pytest.fixture(scope="module")
def sentinel_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """A primary, a replica of it and a sentinel monitoring them (quorum 1, 1 s down-after)."""
    root = tmp_path_factory.mktemp("sentinel")
    ports = SentinelSet(primary=free_port(), replica=free_port(), sentinel=free_port())
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> None:
        directory = root / name
        directory.mkdir()
        log = (directory / "server.log").open("wb")
        processes.append(subprocess.Popen([_binary(), *args], cwd=directory, stdout=log, stderr=subprocess.STDOUT))

    common = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no")
    common += ("--requirepass", DATA_PASSWORD, "--masterauth", DATA_PASSWORD)  # a demoted primary resyncs
    try:
        # No diskless-sync delay (5 s by default): the replica is in sync within a second.
        start("primary", "--port", str(ports.primary), "--repl-diskless-sync-delay", "0", *common)
        start("replica", "--port", str(ports.replica), "--replicaof", "127.0.0.1", str(ports.primary), *common)
        _wait(ports.replica_in_sync, "the replica to sync")
        config = root / "sentinel.conf"  # the sentinel rewrites its own config file: a writable copy
        config.write_text(
            f"port {ports.sentinel}\nbind 127.0.0.1\ndaemonize no\ndir {root}\n"
            f"requirepass {SENTINEL_PASSWORD}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {ports.primary} 1\n"
            f'sentinel auth-pass {SERVICE} "{DATA_PASSWORD}"\n'
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        start("sentinel-process", str(config), "--sentinel")
        _wait(ports.replica_ready, "the sentinel to see the replica in sync", timeout=30)
        yield ports
    finally:
        for proc in processes:
            proc.terminate()
        for proc in processes:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


# ------------------------------------------------------------------------------- the URL itself


def test_the_sentinel_url_form():
    target = parse_sentinel_url("redis+sentinel://:s%40cret@h1:26380,h2,[::1]:26381/primary/3?sentinel_password=sp")
    assert target == SentinelTarget(
        sentinels=(("h1", 26380), ("h2", 26379), ("::1", 26381)),
        service_name="primary",
        db=3,
        password="s@cret",
        sentinel_password="sp",
    )
    assert parse_sentinel_url("redis+sentinel://app:pw@h/primary").username == "app"
    assert parse_sentinel_url("redis+sentinel://h/primary").db == 0


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+sentinel:///primary/0", "no sentinel host"),
        ("redis+sentinel://h1,,h2/primary/0", "no sentinel host"),
        ("redis+sentinel://h1:26379", "no service name"),
        ("redis+sentinel://h1:port/primary", "sentinel 'h1:port': the port must be a number"),
        ("redis+sentinel://h1:0/primary", "the port must be a number from 1 to 65535"),
        ("redis+sentinel://:/primary", "has no host name"),
        ("redis+sentinel://[::1/primary", "an IPv6 address is written [address]:port"),
        ("redis+sentinel://h1/primary/zero", "the database must be a number, not 'zero'"),
        ("redis+sentinel://h1/primary/0/extra", "too many path segments"),
        ("redis+sentinel://h1/primary/0?ssl=true", "unknown option(s) ssl"),
    ],
)
def test_a_bad_sentinel_url_is_named_at_start_up(env, url, reason):
    env()
    with pytest.raises(ConfigError) as raised:
        load_settings(redis_url=url)
    message = str(raised.value)
    assert "REDIS_URL: " in message and "not a usable Redis Sentinel URL" in message
    assert "redis+sentinel://[:password@]host1:26379,host2:26379/<service_name>/<db>" in message
    assert reason in message


def test_a_bad_sentinel_url_never_echoes_its_password(env):
    env()
    with pytest.raises(ConfigError) as raised:
        load_settings(redis_url="redis+sentinel://:hunter2-secret@h1/primary/zero")
    assert "hunter2-secret" not in str(raised.value)


# ------------------------------------------------------------------------ against a real sentinel


def test_a_client_of_the_sentinel_url_reaches_the_primary(sentinel_set):
    for for_web in (False, True):
        client = connect(sentinel_set.url, for_web=for_web)
        client.set("written-through-sentinel", "yes")
        assert sentinel_set.direct(sentinel_set.master_port()).get("written-through-sentinel") == b"yes"
        assert client.execute_command("ROLE")[0] == b"master"
        client.close()


def _order(number: int) -> tuple[bytes, dict[str, str]]:
    order = json.loads(load_fixture("shopify", "orders_paid"))
    order["id"] = 900_000 + number
    order["order_number"] = 9000 + number
    body = json.dumps(order).encode()
    return body, shopify_headers(body, webhook_id=f"sentinel-{number}")


def _post(app_client: Any, number: int) -> Any:
    body, headers = _order(number)
    return app_client.post("/webhooks/harbour/shopify", data=body, headers=headers)


def test_web_workers_and_dashboard_follow_a_failover(env, sandbox, sentinel_set):
    """Intake, RQ worker (with its scheduler) and rq-dashboard on the sentinel URL, before and
    after ``SENTINEL FAILOVER`` promotes the replica: nothing restarts, nothing is lost."""
    old_primary = sentinel_set.master_port()
    connect(sentinel_set.url).flushdb()
    settings = env(REDIS_URL=sentinel_set.url, CONNECTOR_ADMIN_PASSWORD="admin-pw")
    web = create_app(settings).test_client()
    worker_redis = connect(sentinel_set.url)

    first = _post(web, 1)
    assert first.status_code == 202, first.data
    run_worker(worker_redis, burst=True, logging_level="WARNING")
    assert len(sandbox.sandboxes.glu.state()["activities"]) == 1

    sentinel_set.direct(sentinel_set.sentinel).execute_command("SENTINEL", "FAILOVER", SERVICE)
    _wait(lambda: sentinel_set.master_port() != old_primary, "the sentinel to promote the replica")
    new_primary = sentinel_set.master_port()
    # The old primary is demoted (until then it still takes writes: see min-replicas-to-write).
    _wait(lambda: sentinel_set.role(old_primary) == "slave", "the old primary to become a replica")

    # The same app and worker connection, not rebuilt: the first write meets READONLY or a closed
    # socket, the connection asks the sentinel again and lands on the new primary.
    second = _post(web, 2)
    assert second.status_code == 202, second.data
    assert sentinel_set.direct(new_primary).exists(f"rq:job:{second.json['job']}")
    run_worker(worker_redis, burst=True, logging_level="WARNING")
    assert len(sandbox.sandboxes.glu.state()["activities"]) == 2
    assert _post(web, 2).json["status"] == "duplicate"  # the marker lives on the new primary

    admin = {"Authorization": "Basic OmFkbWluLXB3"}
    dashboard = web.get("/admin/rq/0/data/queues.json", headers=admin)
    assert dashboard.status_code == 200, dashboard.data
    assert {queue["name"] for queue in dashboard.json["queues"]} >= {"ingest", "delivery"}
    page = web.get("/admin/rq/", headers=admin).get_data(as_text=True)
    assert f"127.0.0.1:{sentinel_set.sentinel}/{SERVICE}" in page  # the dashboard names the set...
    assert SENTINEL_PASSWORD not in page and "data-secret" not in page  # ...never its passwords


def test_no_primary_known_to_the_sentinels_answers_503_with_retry_after(env, sentinel_set):
    """While the sentinels name no primary (mid-failover, or a service they do not monitor) the
    intake acknowledges nothing: 503 + Retry-After, so the sender retries later."""
    no_primary = (
        f"redis+sentinel://127.0.0.1:{sentinel_set.sentinel}/not-monitored/0?sentinel_password={SENTINEL_PASSWORD}"
    )
    web = create_app(env(REDIS_URL=no_primary)).test_client()
    answer = _post(web, 3)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"]
    assert answer.json["error"]["code"] == "queue_unavailable"


def test_both_passwords_of_a_sentinel_url_are_masked_everywhere(env):
    """The data password (user info) and the sentinels' (query) are configured secrets: the log
    redaction and the Redis/page scans mask them like every other secret."""
    url = "redis+sentinel://:data%2Fpw@h1:26379/primary/0?sentinel_password=sentinel-pw"
    settings = env(REDIS_URL=url)
    secrets = configured_secrets(settings)
    assert {"data/pw", "sentinel-pw"} <= set(secrets)
