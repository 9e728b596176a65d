"""Keep-alive HTTP end to end: the sandbox keeps connections open like the real vendors, and
every client of one origin in a process shares one pool of kept connections, never its keys.

Everything runs over real sockets to the sandbox server; the sandbox's own connection log
(``GET /_sandbox/connections``) says how many TCP connections it accepted and which connection
and credential (a SHA-256 fingerprint) each request came with.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from redis import Redis

from connector import http, jobs
from connector.activities import Activity, Person
from connector.errors import FatalDestinationError, RetriableDestinationError
from connector.http import POOL_CONNECTIONS_PER_ORIGIN, HttpClient, forget_sessions, shared_session
from connector.queue import DELIVERY_QUEUE, get_queue
from connector.sandbox.server import SandboxServer, fingerprint
from connector.settings import Settings
from connector.vendors.glu.platform import GluClient
from connector.worker import ConnectorSimpleWorker, run_worker

GLU_KEY = "sandbox-glu-key"


def accepted(sandbox: SandboxServer) -> int:
    """TCP connections the sandbox has accepted so far."""
    return sandbox.sandboxes.connections.snapshot()["accepted"]


def request_log(sandbox: SandboxServer, path_part: str) -> list[dict[str, Any]]:
    """The sandbox's log entries of requests whose path contains ``path_part``."""
    return [e for e in sandbox.sandboxes.connections.snapshot()["log"] if path_part in e["path"]]


def read_answer(sock: socket.socket) -> bytes:
    """One HTTP answer (headers and its Content-Length body) from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


@pytest.fixture(autouse=True)
def fresh_pool() -> None:
    """Each test starts without kept connections (another test's may point at a closed port)."""
    forget_sessions()


def test_two_requests_on_one_raw_socket_get_two_answers(sandbox: SandboxServer) -> None:
    before = accepted(sandbox)
    contact = json.dumps({"emailAddress": "ada@example.com"}).encode()
    with socket.create_connection((sandbox.server.host, sandbox.server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /glu/contacts HTTP/1.1\r\nHost: sandbox\r\nx-api-key: " + GLU_KEY.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: " + str(len(contact)).encode() + b"\r\n\r\n" + contact
        )
        first = read_answer(sock)
        sock.sendall(b"GET /glu/contacts HTTP/1.1\r\nHost: sandbox\r\nx-api-key: " + GLU_KEY.encode() + b"\r\n\r\n")
        second = read_answer(sock)
    assert first.startswith(b"HTTP/1.1 201")
    assert b"connection: close" not in first.lower()
    assert second.startswith(b"HTTP/1.1 200") and b"ada@example.com" in second
    assert accepted(sandbox) == before + 1
    on_socket = request_log(sandbox, "/glu/contacts")[-2:]
    assert on_socket[0]["connection"] == on_socket[1]["connection"]


def test_a_request_body_left_unread_does_not_spill_into_the_next_request(sandbox: SandboxServer) -> None:
    # A 403 answers before the route reads its body: the body must still not be taken for a request line.
    contact = json.dumps({"emailAddress": "ada@example.com"}).encode()  # small: it arrives with the headers
    with socket.create_connection((sandbox.server.host, sandbox.server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /glu/contacts HTTP/1.1\r\nHost: sandbox\r\nx-api-key: wrong\r\n"
            b"Content-Length: " + str(len(contact)).encode() + b"\r\n\r\n" + contact
        )
        assert read_answer(sock).startswith(b"HTTP/1.1 403")
        sock.sendall(b"GET /glu/contacts HTTP/1.1\r\nHost: sandbox\r\nx-api-key: " + GLU_KEY.encode() + b"\r\n\r\n")
        assert read_answer(sock).startswith(b"HTTP/1.1 200")


def test_an_answer_given_before_the_body_was_read_keeps_the_connection_usable(sandbox: SandboxServer) -> None:
    # The fault answers before the route reads the POST's body; the kept connection's next
    # request must still be read from its own first line.
    glu = GluClient(f"{sandbox.url}/glu", GLU_KEY, timeout=5)
    before = accepted(sandbox)
    for n in range(5):
        sandbox.sandboxes.glu.faults.arm({"mode": "status", "status": 429, "retry_after": 1, "count": 1})
        with pytest.raises(RetriableDestinationError):
            glu.upsert_contact(Person(email=f"guest{n}@example.com"))
        assert glu.find_contact(f"guest{n}@example.com") is None
    assert accepted(sandbox) == before + 1


def test_the_sandbox_sends_each_answer_without_waiting_for_an_ack(sandbox: SandboxServer) -> None:
    # Headers and body leave in two writes; with Nagle's algorithm on, a kept connection's body
    # would wait ~40 ms for the client's delayed ACK on every answer.
    GluClient(f"{sandbox.url}/glu", GLU_KEY, timeout=5).find_contact("ada@example.com")
    sockets = sandbox.sandboxes.connections.open_sockets()
    assert sockets and all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in sockets)


def test_a_dropped_answer_closes_the_connection(sandbox: SandboxServer) -> None:
    sandbox.sandboxes.glu.faults.arm({"mode": "drop", "count": 1})
    with socket.create_connection((sandbox.server.host, sandbox.server.port), timeout=5) as sock:
        sock.sendall(b"GET /glu/contacts HTTP/1.1\r\nHost: sandbox\r\nx-api-key: " + GLU_KEY.encode() + b"\r\n\r\n")
        assert sock.recv(65536) == b""  # closed, no answer


def test_a_client_asking_to_close_gets_the_connection_closed(sandbox: SandboxServer) -> None:
    with socket.create_connection((sandbox.server.host, sandbox.server.port), timeout=5) as sock:
        sock.sendall(b"GET /glu/_sandbox/state HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n")
        answer = read_answer(sock)
        assert b"connection: close" in answer.lower()
        assert sock.recv(65536) == b""


def test_the_connection_count_is_served(sandbox: SandboxServer) -> None:
    answer = requests.get(f"{sandbox.url}/_sandbox/connections", timeout=5).json()
    assert answer["accepted"] >= 1 and answer["open"] >= 1
    assert answer["log"][-1]["path"] == "/_sandbox/connections"


def test_clients_of_one_origin_share_kept_connections(sandbox: SandboxServer) -> None:
    before = accepted(sandbox)
    for n in range(20):  # a new client per call, as a new job builds one
        GluClient(f"{sandbox.url}/glu", GLU_KEY, timeout=5).find_contact(f"guest{n}@example.com")
    assert accepted(sandbox) == before + 1
    assert shared_session(f"{sandbox.url}/glu") is shared_session(f"{sandbox.url}/klaviyo")


def test_a_session_idle_too_long_is_replaced_before_its_next_request(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "MAX_IDLE_SECONDS", 0.2)
    client = GluClient(f"{sandbox.url}/glu", GLU_KEY, timeout=5)
    client.find_contact("ada@example.com")
    before = accepted(sandbox)
    GluClient(f"{sandbox.url}/glu", GLU_KEY, timeout=5).find_contact("ada@example.com")
    assert accepted(sandbox) == before  # in use: kept
    time.sleep(0.3)
    GluClient(f"{sandbox.url}/glu", GLU_KEY, timeout=5).find_contact("ada@example.com")
    assert accepted(sandbox) == before + 1  # idle too long: a fresh connection


def test_the_kept_sessions_are_bounded_by_origin(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "MAX_ORIGINS", 2)
    first = shared_session("https://a.example")
    shared_session("https://b.example")
    shared_session("https://c.example")  # the least recently used (a) goes
    assert shared_session("https://a.example") is not first


def test_two_tenants_share_connections_never_keys(sandbox: SandboxServer) -> None:
    harbour = GluClient(f"{sandbox.url}/glu", GLU_KEY, timeout=5)
    marina = GluClient(f"{sandbox.url}/glu", "marina-glu-key-not-harbours", timeout=5)
    before = accepted(sandbox)
    for n in range(5):
        assert harbour.find_contact(f"guest{n}@example.com") is None
        with pytest.raises(FatalDestinationError) as refused:  # marina's key is not the sandbox's
            marina.find_contact(f"guest{n}@example.com")
        assert refused.value.status == 403
    calls = request_log(sandbox, "/glu/contacts")[-10:]
    assert [c["credential"] for c in calls] == [fingerprint(GLU_KEY), fingerprint("marina-glu-key-not-harbours")] * 5
    assert len({c["connection"] for c in calls}) == 1  # one kept connection carried both tenants' calls
    assert accepted(sandbox) == before + 1
    assert "x-api-key" not in {k.lower() for k in shared_session(f"{sandbox.url}/glu").headers}


def test_a_cookie_one_tenant_got_never_goes_out_with_another(sandbox: SandboxServer) -> None:
    harbour = HttpClient(f"{sandbox.url}", headers={"x-api-key": "harbour-key"})
    marina = HttpClient(f"{sandbox.url}", headers={"x-api-key": "marina-key"})
    answer = harbour.request("GET", "/_sandbox/cookie")
    assert "sandbox-session" in answer.headers["Set-Cookie"]
    after = marina.request("GET", "/_sandbox/connections")
    assert "Cookie" not in after.request.headers
    assert len(shared_session(sandbox.url).cookies) == 0


def test_a_forked_child_opens_its_own_connection(sandbox: SandboxServer) -> None:
    client = GluClient(f"{sandbox.url}/glu", GLU_KEY, timeout=5)
    client.find_contact("parent@example.com")
    before = accepted(sandbox)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: an RQ work horse, as it were
        try:
            GluClient(f"{sandbox.url}/glu", GLU_KEY, timeout=5).find_contact("child@example.com")
            os.write(write_end, b"ok")
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    assert os.read(read_end, 10) == b"ok"
    os.close(read_end)
    assert accepted(sandbox) == before + 1  # the child's own connection, not the parent's socket
    client.find_contact("parent-again@example.com")
    assert accepted(sandbox) == before + 1  # the parent's kept connection still serves it
    parent, child, again = request_log(sandbox, "/glu/contacts")[-3:]
    assert parent["connection"] == again["connection"] != child["connection"]


def test_a_get_whose_answer_was_dropped_is_sent_once_more(sandbox: SandboxServer) -> None:
    glu = sandbox.sandboxes.glu
    client = GluClient(f"{sandbox.url}/glu", GLU_KEY, timeout=5)
    glu.faults.arm({"mode": "drop", "count": 1})
    assert client.find_contact("ada@example.com") is None
    assert glu.faults.calls == 2
    glu.faults.clear()
    glu.faults.arm({"mode": "drop", "count": 2})  # twice: the retry is spent, the job's retry takes over
    with pytest.raises(RetriableDestinationError, match="connection failed"):
        client.find_contact("ada@example.com")
    assert glu.faults.calls == 2


def test_a_post_whose_answer_was_dropped_is_never_sent_again(sandbox: SandboxServer) -> None:
    glu = sandbox.sandboxes.glu
    client = GluClient(f"{sandbox.url}/glu", GLU_KEY, timeout=5)
    glu.faults.arm({"mode": "drop_after", "count": 1})  # the contact is created, its answer lost
    with pytest.raises(RetriableDestinationError, match="connection failed"):
        client.upsert_contact(Person(email="ada@example.com"))
    assert glu.faults.calls == 1
    assert len(glu.state()["contacts"]) == 1
    assert client.find_contact("ada@example.com") is not None  # a new connection replaces the dropped one


def test_the_pool_keeps_a_bounded_number_of_connections(sandbox: SandboxServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sandbox.sandboxes.glu.faults.arm({"mode": "slow", "seconds": 0.2, "count": 12})
    client = GluClient(f"{sandbox.url}/glu", GLU_KEY, timeout=5)
    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(lambda n: client.find_contact(f"g{n}@example.com"), range(12)))
    pooled = shared_session(sandbox.url).get_adapter(sandbox.url).poolmanager.connection_from_url(sandbox.url)
    assert pooled.pool is not None and pooled.pool.qsize() <= POOL_CONNECTIONS_PER_ORIGIN


def test_fifty_deliveries_through_a_worker_use_one_connection(
    env: Callable[..., Settings], sandbox: SandboxServer, redis: Redis
) -> None:
    settings = env()
    tenant = settings.tenants["harbour"]
    start = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    activities = [
        Activity(
            type="Purchase",
            tenant="harbour",
            source="shopify",
            business_key=f"shopify:harbour-hotels.myshopify.com:order:{n}",
            happened_at=start + timedelta(minutes=n),
            person=Person(email=f"guest{n % 10}@example.com"),
            spend=1000 + n,
            currency_code="GBP",
        )
        for n in range(50)
    ]
    jobs.enqueue_deliveries(tenant, activities)
    before = accepted(sandbox)
    jobs.settings.cache_clear()
    jobs.redis.cache_clear()
    run_worker(redis, burst=True, worker_class=ConnectorSimpleWorker, logging_level="WARNING")
    assert len(sandbox.sandboxes.glu.state()["activities"]) == 50
    assert get_queue(redis, DELIVERY_QUEUE).failed_job_registry.count == 0
    assert accepted(sandbox) - before <= 2  # one kept connection (two if the server closed an idle one)
    posts = request_log(sandbox, "/glu/activities")[-50:]
    assert len({p["connection"] for p in posts}) == 1


PROXY_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"


class _ForwardProxy:
    """A forward proxy on a local port that answers every request itself and keeps its request line."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.lines: list[str] = []
        import threading

        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.lines.append(data.split(b"\r\n", 1)[0].decode())
                conn.sendall(PROXY_ANSWER)

    def close(self) -> None:
        self.server.close()


def test_the_environment_is_read_once_per_origin_not_per_request(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """requests reads the proxy variables (walking the whole environment) and ~/.netrc for every
    request of a session that trusts the environment: about 0.1 ms a request (issue 16). The
    kept session reads them once, when it is made for its origin."""
    lookups: list[str] = []
    real_proxies, real_netrc = requests.sessions.get_environ_proxies, requests.sessions.get_netrc_auth

    def counted_proxies(url: str, no_proxy: str | None = None) -> dict[str, str]:
        lookups.append(f"proxies {url}")
        return real_proxies(url, no_proxy=no_proxy)

    def counted_netrc(url: str, raise_errors: bool = False) -> Any:
        lookups.append(f"netrc {url}")
        return real_netrc(url, raise_errors)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counted_proxies)
    monkeypatch.setattr(requests.sessions, "get_netrc_auth", counted_netrc)
    monkeypatch.setattr(requests.utils, "get_netrc_auth", counted_netrc)
    client = HttpClient(f"{sandbox.url}/glu", headers={"x-api-key": GLU_KEY}, timeout=5)
    for n in range(5):
        client.request("GET", "/contacts", params={"emailAddress": f"guest{n}@example.com"})
    assert len([line for line in lookups if line.startswith("proxies")]) == 1, lookups
    assert len([line for line in lookups if line.startswith("netrc")]) <= 1, lookups


def test_proxies_no_proxy_and_the_ca_bundle_of_the_environment_still_apply(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Read once, the environment still decides: a request to an origin behind HTTP_PROXY goes
    through that proxy (real sockets), one NO_PROXY names goes direct, and an https origin
    verifies against REQUESTS_CA_BUNDLE."""
    proxy = _ForwardProxy()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        bundle = tmp_path / "ca.pem"
        bundle.write_text("not read until an https request is made\n")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        behind = HttpClient("http://vendor.example", timeout=5).request("GET", "/ping")
        assert behind.status_code == 200
        assert proxy.lines == ["GET http://vendor.example/ping HTTP/1.1"]
        before = accepted(sandbox)
        direct = HttpClient(f"{sandbox.url}/glu", headers={"x-api-key": GLU_KEY}, timeout=5)
        direct.request("GET", "/contacts", params={"emailAddress": "ada@example.com"})
        assert accepted(sandbox) == before + 1 and len(proxy.lines) == 1  # NO_PROXY: straight to the sandbox
        assert shared_session("https://api.vendor.example").verify == str(bundle)
    finally:
        proxy.close()
