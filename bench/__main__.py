"""``make bench``: intake against a bare Flask endpoint, and worker delivery, in one run.

Scenarios (each prints its own lines; ratios are measured side by side in this run):

1. Intake: signed Shopify ``orders/paid`` webhooks through the whole intake (verify, identify,
   dedupe, enqueue into Redis with AOF on) under ``config/gunicorn.conf.py``, against a bare Flask
   endpoint that only reads the body, under the same gunicorn settings. Alternating rounds;
   the ratio is of the medians.
2. Delivery: accepted webhooks worked off by ``connector worker --burst`` processes against the
   Glu sandbox (contact lookup/creation, activity post, ledger).

Options: ``python -m bench --requests 3000 --rounds 3 --concurrency 8 --deliveries 600 --workers 2``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from bench.load import LoadResult, raw_request, run_load
from connector.embedded_redis import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-shopify-secret"
SHOP = "bench-shop.myshopify.com"
SAMPLE = json.loads((ROOT / "connector/sandbox/samples/shopify-order.json").read_text())


def say(message: str) -> None:
    """Progress output."""
    print(message, flush=True)


def signed_order(order_id: int, customer: int, host: str, port: int, tenant: str = "bench") -> bytes:
    """A raw signed ``orders/paid`` request for a fresh order and delivery id."""
    order = json.loads(json.dumps(SAMPLE))
    email = f"guest{customer}@example.com"
    order.update(id=order_id, email=email, contact_email=email)
    order["customer"].update(id=9000 + customer, email=email)
    body = json.dumps(order).encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-API-Version": "2025-10",
    }
    return raw_request(host, port, f"/webhooks/{tenant}/shopify", headers, body)


@contextmanager
def process(argv: list[str], env: dict[str, str], ready: Callable[[], bool], name: str) -> Iterator[None]:
    """Run a server process until the block ends; wait until ``ready()``."""
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                raise SystemExit(f"{name} did not start: {err}")
            time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def answers(url: str, method: str = "GET") -> Callable[[], bool]:
    """A readiness probe: the URL answers at all."""

    def probe() -> bool:
        try:
            requests.request(method, url, timeout=1)
            return True
        except requests.RequestException:
            return False

    return probe


def describe(label: str, result: LoadResult) -> str:
    """One line of results."""
    return (
        f"  {label:<28} {result.rate:8.0f} req/s   p50 {result.p50_ms:6.2f} ms   p99 {result.p99_ms:6.2f} ms"
        f"   statuses {dict(sorted(result.statuses.items()))}"
    )


def bench_intake(args: argparse.Namespace, env: dict[str, str], ours: int, bare: int) -> float:
    """Scenario 1; returns the ratio of medians."""
    say(f"\n[intake] {args.requests} signed Shopify webhooks per round, {args.concurrency} client processes, "
        f"gunicorn {env.get('WEB_CONCURRENCY', 'default')} workers")
    warm = [signed_order(1, 1, "127.0.0.1", ours, "bench") for _ in range(50)]
    run_load("127.0.0.1", ours, warm, args.concurrency)
    run_load("127.0.0.1", bare, warm, args.concurrency)
    ours_rates, bare_rates, ours_results = [], [], []
    next_id = 10_000_000
    for round_number in range(1, args.rounds + 1):
        payloads = [signed_order(next_id + i, i % 50, "127.0.0.1", ours) for i in range(args.requests)]
        next_id += args.requests
        baseline = run_load("127.0.0.1", bare, payloads, args.concurrency)
        intake = run_load("127.0.0.1", ours, payloads, args.concurrency)
        say(f" round {round_number}")
        say(describe("bare Flask endpoint", baseline))
        say(describe("connector intake", intake))
        if set(intake.statuses) != {202}:
            raise SystemExit(f"intake answered {intake.statuses}: not every webhook was accepted")
        bare_rates.append(baseline.rate)
        ours_rates.append(intake.rate)
        ours_results.append(intake)
    ratio = statistics.median(ours_rates) / statistics.median(bare_rates)
    p50 = statistics.median(r.p50_ms for r in ours_results)
    p99 = statistics.median(r.p99_ms for r in ours_results)
    say(f" => intake {statistics.median(ours_rates):.0f} req/s = {ratio:.0%} of the bare endpoint "
        f"({statistics.median(bare_rates):.0f} req/s); p50 {p50:.2f} ms, p99 {p99:.2f} ms (target >= 60%)")
    return ratio


def bench_delivery(args: argparse.Namespace, env: dict[str, str], ours: int, redis_url: str, sandbox: int) -> None:
    """Scenario 2: accepted webhooks → worker processes → Glu sandbox."""
    from redis import Redis

    Redis.from_url(redis_url).flushdb()
    requests.post(f"http://127.0.0.1:{sandbox}/glu/_sandbox/reset", timeout=5)
    payloads = [signed_order(50_000_000 + i, i % 50, "127.0.0.1", ours) for i in range(args.deliveries)]
    result = run_load("127.0.0.1", ours, payloads, args.concurrency)
    if set(result.statuses) != {202}:
        raise SystemExit(f"intake answered {result.statuses}")
    say(f"\n[delivery] {args.deliveries} accepted webhooks, {args.workers} `connector worker --burst` processes, "
        "Glu sandbox over HTTP")
    started = time.perf_counter()
    workers = [
        subprocess.Popen([sys.executable, "-m", "connector.cli", "worker", "--burst"], env=env, cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(args.workers)
    ]
    for worker in workers:
        worker.wait()
    seconds = time.perf_counter() - started
    state = requests.get(f"http://127.0.0.1:{sandbox}/glu/_sandbox/state", timeout=30).json()
    delivered = len(state["activities"])
    say(f"  {delivered} activities in {seconds:.1f} s = {delivered / seconds:.0f} webhooks/s end to end "
        f"({2 * delivered / seconds:.0f} jobs/s: ingest + delivery; {len(state['contacts'])} contacts)")
    if delivered != args.deliveries:
        raise SystemExit(f"expected {args.deliveries} activities, the sandbox holds {delivered}")


def main() -> None:
    """Run every scenario and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--deliveries", type=int, default=600)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        redis = EmbeddedRedis(Path(tmp) / "redis", appendonly=True).start()
        sandbox_port, ours, bare = free_port(), free_port(), free_port()
        tenants = Path(tmp) / "tenants.toml"
        tenants.write_text(
            f'[tenants.bench]\ntimezone = "Europe/London"\n'
            f'[tenants.bench.loyalty]\nplatform = "glu"\nbase_url = "http://127.0.0.1:{sandbox_port}/glu"\n'
            f'api_key = "sandbox-glu-key"\n'
            f'[tenants.bench.sources.shopify]\nshop_domain = "{SHOP}"\nsecrets = ["{SECRET}"]\n'
        )
        env = {**os.environ, "REDIS_URL": redis.url, "CONNECTOR_TENANTS_FILE": str(tenants),
               "PYTHONPATH": str(ROOT)}
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        say(f"machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}; Redis embedded with AOF (everysec)")
        try:
            with (
                process([sys.executable, "-m", "connector.cli", "sandbox", "--port", str(sandbox_port)], env,
                        answers(f"http://127.0.0.1:{sandbox_port}/"), "sandbox"),
                process([gunicorn, "-c", "config/gunicorn.conf.py", "wsgi:app"],
                        {**env, "CONNECTOR_BIND": f"127.0.0.1:{ours}"},
                        answers(f"http://127.0.0.1:{ours}/healthz"), "connector web"),
                process([gunicorn, "-c", "config/gunicorn.conf.py", "bench.bare:app"],
                        {**env, "CONNECTOR_BIND": f"127.0.0.1:{bare}"},
                        answers(f"http://127.0.0.1:{bare}/webhooks/x/y", "POST"), "bare web"),
            ):
                bench_intake(args, env, ours, bare)
                bench_delivery(args, env, ours, redis.url, sandbox_port)
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
