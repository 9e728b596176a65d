"""A small HTTP load generator: pre-built raw requests, one connection each, many processes.

Requests are built (and signed) before the clock starts, so the client spends its time on the
socket, not on HMACs. Each process sends its share sequentially and records per-request latency.
"""

from __future__ import annotations

import multiprocessing
import socket
import statistics
import time
from dataclasses import dataclass

CUSTOMERS = 50
"""Distinct guests the benchmarks' Shopify orders come from (order i is guest i % CUSTOMERS)."""


def raw_request(host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """One HTTP/1.1 POST as bytes, closing the connection after the answer."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _send(host: str, port: int, payload: bytes) -> tuple[int, float, float]:
    sent_at = time.time()
    started = time.perf_counter()
    with socket.create_connection((host, port)) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    answer = b"".join(chunks)
    status = int(answer[9:12]) if answer.startswith(b"HTTP/1.") else 0
    return status, time.perf_counter() - started, sent_at


def _worker(args: tuple[str, int, list[bytes]]) -> list[tuple[int, float, float]]:
    host, port, payloads = args
    return [_send(host, port, p) for p in payloads]


@dataclass
class LoadResult:
    """Throughput and latency of one run."""

    requests: int
    seconds: float
    statuses: dict[int, int]
    p50_ms: float
    p99_ms: float
    sent_at: list[float]  # epoch seconds at which each payload was sent, in payload order

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds


def run_load(host: str, port: int, payloads: list[bytes], concurrency: int) -> LoadResult:
    """Send every payload once, ``concurrency`` processes in parallel."""
    concurrency = max(1, min(concurrency, len(payloads)))
    shares = [payloads[i::concurrency] for i in range(concurrency)]
    with multiprocessing.get_context("fork").Pool(concurrency) as pool:
        started = time.perf_counter()
        results = pool.map(_worker, [(host, port, share) for share in shares])
        seconds = time.perf_counter() - started
    flat = [r for share in results for r in share]
    sent_at = [0.0] * len(payloads)
    for offset, share in enumerate(results):
        for position, (_, _, when) in enumerate(share):
            sent_at[offset + position * concurrency] = when
    statuses: dict[int, int] = {}
    for status, _, _ in flat:
        statuses[status] = statuses.get(status, 0) + 1
    latencies = sorted(latency for _, latency, _ in flat)
    return LoadResult(
        len(flat), seconds, statuses, statistics.median(latencies) * 1000, percentile(latencies, 0.99) * 1000, sent_at
    )


def percentile(ordered: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of the (sorted) values fall."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]
