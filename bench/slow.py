"""Slow clients (slowloris-style) held open against a local server while normal webhooks are sent.

:class:`SlowClients` opens ``count`` loopback connections that each send an incomplete request
and then trickle one more byte at a time: half of them trickle the request headers, half send
complete headers with a ``Content-Length`` and trickle the body. A connection the server closes
is reopened, so ``count`` stay open until :meth:`SlowClients.stop` (or the ``duration`` given,
whichever comes first: the attack always stops by itself). :func:`send_paced` sends normal
requests at a steady rate meanwhile and reports how many were answered within a deadline.

Used by ``make bench`` and by ``tests/test_gunicorn_config.py``. Loopback only: this is a
load test for one's own server, not a tool to point elsewhere.
"""

from __future__ import annotations

import errno
import ipaddress
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

# Bytes sent on each slow connection per tick: one header byte or one body byte.
TICK_SECONDS = 0.5


def _check_loopback(host: str) -> None:
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"slow clients are for a local server only, not {host}")


@dataclass
class _Slow:
    sock: socket.socket
    remaining: bytes


@dataclass
class SlowClients:
    """``count`` slow connections to ``host:port``, held open for at most ``duration`` seconds."""

    host: str
    port: int
    count: int
    duration: float
    path: str = "/webhooks/bench/shopify"
    opened: int = 0  # connections opened in total (reopened ones included)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    def _request(self, index: int) -> tuple[bytes, bytes]:
        """(what is sent at once, what is trickled): header trickle for even, body trickle for odd."""
        if index % 2 == 0:
            head = f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\n".encode()
            # a header that never ends: one more byte per tick
            return head, b"X-Slow: " + b"a" * 100_000
        body_length = 100_000
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {body_length}\r\n\r\n"
        ).encode()
        return head + b"{", b" " * (body_length - 1)

    def _open(self, index: int) -> _Slow | None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=2)
            first, rest = self._request(index)
            sock.sendall(first)
            sock.settimeout(0.5)
            self.opened += 1
            return _Slow(sock, rest)
        except OSError:
            return None

    def _run(self) -> None:
        deadline = time.monotonic() + self.duration
        slots: list[_Slow | None] = [self._open(i) for i in range(self.count)]
        self._ready.set()
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                for index, slot in enumerate(slots):
                    if slot is not None and slot.remaining:
                        try:
                            slot.sock.sendall(slot.remaining[:1])
                            slot.remaining = slot.remaining[1:]
                            continue
                        except OSError:
                            slot.sock.close()
                    # closed by the server (or never opened): open another one, as an attacker would
                    slots[index] = self._open(index)
                self._stop.wait(TICK_SECONDS)
        finally:
            for slot in slots:
                if slot is not None:
                    slot.sock.close()

    def start(self) -> SlowClients:
        """Open the connections (returns once they are all attempted) and start trickling."""
        _check_loopback(self.host)
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=60)
        return self

    def stop(self) -> None:
        """Close every slow connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def __enter__(self) -> SlowClients:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class PacedResult:
    """Normal requests sent at a steady rate: how many got an answer in time, and how fast."""

    sent: int
    statuses: dict[int, int]  # 0: no answer within the deadline (or the connection failed)
    latencies: list[float]  # seconds, answered requests only, sorted
    behind: float = 0.0  # worst seconds a request was opened after its scheduled time (the sender's lag)

    @property
    def answered(self) -> int:
        """Requests that got any HTTP answer within the deadline."""
        return sum(n for status, n in self.statuses.items() if status)

    @property
    def accepted(self) -> int:
        """Requests answered 2xx."""
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    def p(self, fraction: float) -> float:
        """A latency percentile in ms over the requests sent (an unanswered one counts as infinite)."""
        if not self.sent:
            return float("nan")
        index = min(self.sent - 1, int(self.sent * fraction))
        return self.latencies[index] * 1000 if index < len(self.latencies) else float("inf")


@dataclass
class _InFlight:
    """One paced request on its non-blocking socket."""

    sock: socket.socket
    started: float
    unsent: bytes
    chunks: list[bytes] = field(default_factory=list)


def _status(answer: bytes) -> int:
    return int(answer[9:12]) if answer.startswith(b"HTTP/1.") and len(answer) >= 12 and answer[9:12].isdigit() else 0


def send_paced(host: str, port: int, payloads: list[bytes], rate: float, deadline: float = 5.0) -> PacedResult:
    """Send each payload (a raw request that closes its connection) at ``rate`` per second.

    Each request is sent on time whether or not the previous ones were answered (a sender does
    not wait for us); one that gets no complete answer within ``deadline`` seconds counts as
    unanswered. One thread drives every connection through a selector: a pool of threads, one
    per request in flight, measured its own scheduling (a thread that had its answer waited for
    the GIL before it could read the clock), which put up to tens of milliseconds of the
    sender's making into the p99 of even a bare endpoint.
    """
    _check_loopback(host)
    selector = selectors.DefaultSelector()
    in_flight: dict[socket.socket, _InFlight] = {}  # in opening order: the oldest expires first
    results: list[tuple[int, float]] = []
    behind = 0.0
    start = time.perf_counter()
    next_index = 0

    def finish(request: _InFlight, status: int, latency: float) -> None:
        selector.unregister(request.sock)
        request.sock.close()
        del in_flight[request.sock]
        results.append((status, latency))

    try:
        while next_index < len(payloads) or in_flight:
            now = time.perf_counter()
            while next_index < len(payloads) and start + next_index / rate <= now:
                behind = max(behind, now - (start + next_index / rate))
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                error = sock.connect_ex((host, port))
                request = _InFlight(sock, time.perf_counter(), payloads[next_index])
                in_flight[sock] = request
                selector.register(sock, selectors.EVENT_WRITE, request)
                if error not in (0, errno.EINPROGRESS):
                    finish(request, 0, 0.0)
                next_index += 1
            while in_flight:
                oldest = next(iter(in_flight.values()))
                if now - oldest.started <= deadline:
                    break
                finish(oldest, 0, 0.0)
            wake = [start + next_index / rate] if next_index < len(payloads) else []
            if in_flight:
                wake.append(next(iter(in_flight.values())).started + deadline)
            timeout = max(0.0, min(wake) - time.perf_counter()) if wake else 0.0
            for key, _ in selector.select(timeout):
                request = key.data
                try:
                    if request.unsent:
                        request.unsent = request.unsent[request.sock.send(request.unsent) :]
                        if not request.unsent:
                            selector.modify(request.sock, selectors.EVENT_READ, request)
                        continue
                    chunk = request.sock.recv(65536)
                except OSError:
                    finish(request, 0, 0.0)
                    continue
                if chunk:
                    request.chunks.append(chunk)
                else:
                    finish(request, _status(b"".join(request.chunks)), time.perf_counter() - request.started)
    finally:
        for request in list(in_flight.values()):
            finish(request, 0, 0.0)
        selector.close()
    statuses: dict[int, int] = {}
    for status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    return PacedResult(len(results), statuses, sorted(latency for status, latency in results if status), behind)
