"""``make bench``: intake against a bare Flask endpoint, and worker delivery, in one run.

Scenarios (each prints its own lines; ratios are measured side by side in this run):

1. Intake: signed Shopify ``orders/paid`` webhooks through the whole intake (verify, identify,
   dedupe, enqueue into Redis with AOF on and ``appendfsync always``) under
   ``config/gunicorn.conf.py``, against a bare Flask endpoint that only reads the body, under the
   same gunicorn settings; the same pair again with the old default (sync workers,
   ``CONNECTOR_WEB_THREADS=1``); and the intake on a Redis with ``appendfsync everysec``. Paired
   rounds (every server, fresh payloads of the same shape, back to back, rotating which goes
   first); each ratio is the median of the rounds' ratios.
1b. Slow clients (``slow``): 100 slowloris connections held open (bounded, loopback only) while
   normal signed webhooks are sent at a steady rate, against the default and the old default:
   share answered within 5 s, p50 and p99.
2. Delivery (``delivery``, :mod:`bench.workers`): accepted webhooks drained by ``connector worker
   --burst`` per worker class, against RQ's own no-op job rate for the same class and one process
   posting the same activities over keep-alive, on the same Redis and sandbox (ratios per process).
2b. Footprint (``footprint``, :mod:`bench.footprint`): Redis bytes per pending job and kept per
   finished webhook, by key family; gunicorn worker RSS after 10,000 webhooks; worker RSS.
2c. Round trips (``roundtrips``, :mod:`bench.roundtrips`): Redis round trips per webhook (intake,
   ingest job, delivery job) and HTTP requests per activity, counted by ``bench/counting``.
3. PMS: Mews General Webhooks with batches of 50 reservations (each fetched from the Mews
   sandbox): messages/s at the intake, activities/s through the workers, and one message's
   seconds from the POST to its last activity at Glu with the workers running (target < 2 s).
4. Wi-Fi: a Purple login storm (many guests, many reconnects): logins/s answered and the share
   that becomes a job and reaches the platform.
5. Relay: signed Voucherify ``customer.*`` events to the Klaviyo sandbox with workers running:
   events/s end to end and p50/p99 from webhook sent to event received by the ESP; the burst's
   seconds from the first sent to the last received (300 events: target < 3 s).

Last, a summary table: every figure with its anchor in the same run, ratio, target, PASS/MISS.
``python -m bench.profile`` (``make profile``) profiles one worker separately (py-spy).

Options: ``python -m bench --requests 500 --rounds 20 --concurrency 8 --slow 100 --deliveries 300
--workers 2``; ``--only intake,slow`` runs a subset; ``--help`` lists them all.
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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import requests

from bench.cpu import CpuMeter, CpuSplit
from bench.footprint import bench_footprint
from bench.intake import LARGE_BYTES, SMALL_BYTES, order_body, paced_run
from bench.load import CUSTOMERS, LoadResult, percentile, raw_request, run_load
from bench.roundtrips import bench_roundtrips
from bench.slow import SlowClients, send_paced
from bench.summary import Row, Summary
from bench.workers import bench_workers
from connector.embedded_redis import EmbeddedRedis, free_port
from connector.sandbox.pms_samples import mews_batch, mews_batch_data
from connector.sandbox.relay_samples import voucherify_events
from connector.sandbox.server import DEFAULT_KEYS
from connector.sandbox.wifi_samples import wifi_login_storm

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-shopify-secret"
MEWS_TOKEN = "bench-mews-token"
PURPLE_TOKEN = "bench-purple-token"
VOUCHERIFY_SECRET = "bench-voucherify-secret"
PMS_TARGET_SECONDS = 2.0  # a Mews message of 50 reservations, POST to its last activity (issue 16)
RELAY_TARGET_SECONDS = 3.0  # 300 relay events, first sent to last at the ESP (issue 16)
SCENARIOS = ("intake", "slow", "delivery", "footprint", "roundtrips", "pms", "wifi", "relay")
SHOP = "bench-shop.myshopify.com"
SAMPLE = json.loads((ROOT / "connector/sandbox/samples/shopify-order.json").read_text())


def say(message: str) -> None:
    """Progress output."""
    print(message, flush=True)


def signed_order(
    order_id: int, customer: int, host: str, port: int, tenant: str = "bench", body_bytes: int = SMALL_BYTES
) -> bytes:
    """A raw signed ``orders/paid`` request for a fresh order and delivery id, its body at least
    ``body_bytes`` long (the sample order is 1 KB; see :func:`bench.intake.order_body`)."""
    order = json.loads(json.dumps(SAMPLE))
    email = f"guest{customer}@example.com"
    order.update(id=order_id, email=email, contact_email=email)
    order["customer"].update(id=9000 + customer, email=email)
    body = order_body(order, body_bytes)
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
def process(
    argv: list[str], env: dict[str, str], ready: Callable[[], bool], name: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server process until the block ends; wait until ``ready()``; yields the process."""
    # Output goes to a file: an unread pipe fills up and blocks a chatty server mid-benchmark.
    log = tempfile.NamedTemporaryFile(prefix=f"bench-{name.replace(' ', '-')}-", suffix=".log", delete=False)
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        Path(log.name).unlink(missing_ok=True)


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


@dataclass
class Server:
    """One gunicorn server of the intake comparison."""

    label: str
    port: int
    results: list[LoadResult] = field(default_factory=list)
    pid: int = 0  # the gunicorn master's
    redis_pid: int | None = None  # the Redis it writes to (none for the bare endpoint)

    def median_rate(self) -> float:
        """Median req/s over the rounds."""
        return statistics.median(r.rate for r in self.results)


# Ratios reported per round: (label, numerator, denominator) by server key.
RATIOS = (
    ("intake / bare (gthread, the default)", "ours", "bare"),
    ("intake / bare, 15 KB order (gthread)", "ours_15k", "bare_15k"),
    ("intake / bare (sync, the old default)", "ours_sync", "bare_sync"),
    ("intake gthread / intake sync", "ours", "ours_sync"),
    ("intake fsync always / everysec", "ours", "ours_everysec"),
)


# The intake's runs: a server with bodies of one size (the 15 KB runs: issue 16; real orders are 5-20 KB).
INTAKE_RUNS = {
    "bare_sync": ("bare_sync", SMALL_BYTES),
    "ours_sync": ("ours_sync", SMALL_BYTES),
    "ours": ("ours", SMALL_BYTES),
    "ours_everysec": ("ours_everysec", SMALL_BYTES),
    "bare": ("bare", SMALL_BYTES),
    "bare_15k": ("bare", LARGE_BYTES),
    "ours_15k": ("ours", LARGE_BYTES),
}
INTAKE_TARGET = 0.80
PACED_TARGET_MS = 20.0


def bench_intake(args: argparse.Namespace, servers: dict[str, Server], summary: Summary) -> dict[str, float]:
    """Scenario 1; returns the median of the per-round ratios, by ratio label.

    Each round sends fresh payloads of the same shape to every server back to back, the order
    reversed every other round, and yields one value of each ratio. On a shared machine whose speed drifts
    from minute to minute, paired rounds compare like with like; the median of the rounds and
    their spread are reported. The intake and the bare endpoint are measured with 1 KB and with
    15 KB order bodies; then each is sent webhooks at half of the intake's measured peak rate, paced
    (:func:`bench.intake.paced_run`), for the p99 a sender sees below saturation.
    """
    say(
        f"\n[intake] {args.requests} signed Shopify webhooks per server per round, {args.rounds} rounds, "
        f"{args.concurrency} client processes, {(os.cpu_count() or 1) * 2 + 1} gunicorn workers each "
        f"(WEB_CONCURRENCY default); bodies {SMALL_BYTES // 1000} KB, and {LARGE_BYTES // 1000} KB for the "
        "15k runs; servers: " + "; ".join(s.label for s in servers.values())
    )
    for server in servers.values():
        run_load(
            "127.0.0.1",
            server.port,
            [signed_order(1, 1, "127.0.0.1", server.port) for _ in range(50)],
            args.concurrency,
        )
    per_round: dict[str, list[float]] = {label: [] for label, _, _ in RATIOS}
    results: dict[str, list[LoadResult]] = {key: [] for key in INTAKE_RUNS}
    cpu: dict[str, CpuSplit] = {key: CpuSplit() for key in INTAKE_RUNS}
    next_id = 10_000_000
    # Runs go in this order (reversed every other round): each compared pair is adjacent
    # or one apart, so the machine's drift between the two halves of a pair stays small.
    keys = [key for key, (server_key, _) in INTAKE_RUNS.items() if server_key in servers]
    for round_number in range(1, args.rounds + 1):
        order = keys if round_number % 2 else keys[::-1]
        # fresh delivery ids per run (two servers share a Redis, and a repeat is a duplicate),
        # all signed before the first run so no server waits for another's payloads
        payloads: dict[str, list[bytes]] = {}
        for key in order:
            server_key, body_bytes = INTAKE_RUNS[key]
            port = servers[server_key].port
            payloads[key] = [
                signed_order(next_id + i, i % 50, "127.0.0.1", port, body_bytes=body_bytes)
                for i in range(args.requests)
            ]
            next_id += args.requests
        rates: dict[str, float] = {}
        for key in order:
            server = servers[INTAKE_RUNS[key][0]]
            with CpuMeter.for_server(server.pid, server.redis_pid) as meter:
                result = run_load("127.0.0.1", server.port, payloads[key], args.concurrency)
            cpu[key].add(len(payloads[key]), meter.spent)
            if key.startswith("ours") and set(result.statuses) != {202}:
                raise SystemExit(f"{server.label} answered {result.statuses}: not every webhook was accepted")
            if INTAKE_RUNS[key][1] == SMALL_BYTES:
                server.results.append(result)
            results[key].append(result)
            rates[key] = result.rate
        for label, top, bottom in RATIOS:
            if top in rates and bottom in rates:
                per_round[label].append(rates[top] / rates[bottom])
        say(
            f" round {round_number:>2}: "
            + "  ".join(f"{key} {rates[key]:5.0f}" for key in keys)
            + " req/s;  "
            + "  ".join(f"{per_round[label][-1]:.0%}" for label, _, _ in RATIOS if per_round[label])
        )
    say(" medians over the rounds (range):")
    for key in keys:
        server_key, body_bytes = INTAKE_RUNS[key]
        label = f"{servers[server_key].label}, {body_bytes // 1000} KB"
        rate = statistics.median(r.rate for r in results[key])
        p50 = statistics.median(r.p50_ms for r in results[key])
        p99 = statistics.median(r.p99_ms for r in results[key])
        say(f"  {label:<52} {rate:6.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    medians = {}
    for label, _, _ in RATIOS:
        values = per_round[label]
        if values:
            medians[label] = statistics.median(values)
            say(f"  {label:<52} {medians[label]:6.0%}   (rounds {min(values):.0%}-{max(values):.0%})")
    say(
        f"  target: intake >= {INTAKE_TARGET:.0%} of the bare endpoint under the same gunicorn settings, "
        "for 1 KB and for 15 KB bodies (the first two ratios)"
    )
    say_cpu_split(cpu, servers)
    bench_intake_paced(args, servers, results, next_id, summary)
    return medians


def say_cpu_split(cpu: dict[str, CpuSplit], servers: dict[str, Server]) -> None:
    """Where each run's CPU went, per request, and what the 80 % target leaves the intake.

    The servers run saturated on the machine's cores, so a rate is the cores over the CPU spent
    per request by every process involved; at 80 % of the bare endpoint's rate the intake may
    spend 1 / 0.8 of the bare endpoint's total, and no more (see :mod:`bench.cpu`).
    """
    say(" CPU per request, all rounds (us; gunicorn master and workers, its Redis, the load generator):")
    for key, split in cpu.items():
        server_key, body_bytes = INTAKE_RUNS[key]
        if not split.requests or server_key not in servers:
            continue
        parts = "   ".join(
            f"{group} {split.per_request_us(group):5.0f}" for group in ("gunicorn", "Redis", "load generator")
        )
        label = f"{servers[server_key].label}, {body_bytes // 1000} KB"
        say(f"  {label:<52} {parts}   total {split.total_us():5.0f}")
    for ours, bare in (("ours", "bare"), ("ours_15k", "bare_15k")):
        if not cpu[ours].requests or not cpu[bare].requests:
            continue
        allowed = cpu[bare].total_us() / INTAKE_TARGET
        size = INTAKE_RUNS[ours][1] // 1000
        say(
            f"  {size} KB: at {INTAKE_TARGET:.0%} of the bare endpoint the intake may spend {allowed:.0f} us "
            f"per request in all, {allowed - cpu[bare].total_us():.0f} more than the bare endpoint; it spends "
            f"{cpu[ours].total_us() - cpu[bare].total_us():.0f} more (gunicorn "
            f"{cpu[ours].per_request_us('gunicorn') - cpu[bare].per_request_us('gunicorn'):+.0f}, Redis "
            f"{cpu[ours].per_request_us('Redis'):+.0f}, load generator "
            f"{cpu[ours].per_request_us('load generator') - cpu[bare].per_request_us('load generator'):+.0f})"
        )


def bench_intake_paced(
    args: argparse.Namespace,
    servers: dict[str, Server],
    results: dict[str, list[LoadResult]],
    next_id: int,
    summary: Summary,
) -> None:
    """The intake's (and the bare endpoint's) latency at half of the intake's measured peak rate."""
    if "ours" not in servers or not results["ours"]:
        return
    say(f" paced at half of the intake's peak ({args.paced_seconds:.0f} s each, one connection per webhook):")
    for key in ("ours", "ours_15k", "bare"):
        server_key, body_bytes = INTAKE_RUNS[key]
        if server_key not in servers:
            continue
        peak = statistics.median(r.rate for r in results["ours" if body_bytes == SMALL_BYTES else "ours_15k"])
        rate = peak / 2
        port = servers[server_key].port
        count = max(1, int(rate * args.paced_seconds))
        payloads = [signed_order(next_id + i, i % 50, "127.0.0.1", port, body_bytes=body_bytes) for i in range(count)]
        next_id += count
        figures = paced_run(f"{servers[server_key].label}, {body_bytes // 1000} KB", port, payloads, rate)
        say(figures.line())
        if server_key == "ours":
            summary.add(
                Row(
                    f"intake p99 at half of peak, {body_bytes // 1000} KB",
                    figures.result.p(0.99),
                    "ms",
                    PACED_TARGET_MS,
                    at_least=False,
                    anchor=f"{rate:.0f} req/s paced",
                )
            )
    say(f"  target: intake p99 < {PACED_TARGET_MS:.0f} ms at half of peak load")


def drained(port: int, quiet: float = 2.0) -> None:
    """Wait until the server answers again, then ``quiet`` seconds more.

    Requests that gave up during an attack may still sit in the listen backlog; a server that was
    stuck works them off when the attack ends, and their jobs must not land in the next scenario.
    """
    probe = answers(f"http://127.0.0.1:{port}/healthz")
    deadline = time.monotonic() + 60
    while not probe() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(quiet)


def bench_slow_clients(args: argparse.Namespace, servers: dict[str, Server]) -> None:
    """Scenario 1b: normal signed webhooks while ``--slow`` slowloris connections are held open.

    For the default (gthread) and the old default (sync): the slow connections are opened first
    (half trickle their headers, half their body, a byte every half second each, reopened when
    closed), then normal webhooks are sent at a steady rate; a webhook not answered within
    ``--slow-deadline`` seconds counts as lost. The attack is bounded (it stops by itself) and
    on loopback only.
    """
    seconds = args.slow_webhooks / args.slow_rate
    say(
        f"\n[slow clients] {args.slow} slow connections held open (headers or body trickled) while "
        f"{args.slow_webhooks} normal signed webhooks are sent at {args.slow_rate}/s ({seconds:.0f} s); "
        f"answered = a response within {args.slow_deadline:.0f} s"
    )
    next_id = 70_000_000
    for key in ("ours", "ours_sync"):
        server = servers[key]
        payloads = [signed_order(next_id + i, i % 50, "127.0.0.1", server.port) for i in range(args.slow_webhooks)]
        next_id += args.slow_webhooks
        with SlowClients("127.0.0.1", server.port, args.slow, duration=seconds + args.slow_deadline + 30) as slow:
            time.sleep(1.0)  # let the server take the slow connections in first
            result = send_paced("127.0.0.1", server.port, payloads, args.slow_rate, args.slow_deadline)
            opened = slow.opened
        drained(server.port)
        share = result.answered / result.sent
        say(
            f"  {server.label:<44} answered {result.answered}/{result.sent} = {share:.1%}   "
            f"p50 {result.p(0.5):.1f} ms   p99 {result.p(0.99):.1f} ms   "
            f"statuses {dict(sorted(result.statuses.items()))}"
            f"   ({opened} slow connections opened)"
        )
    say("  target: >= 99% answered with the default settings")


def queue_shopify_webhooks(ours: int, concurrency: int) -> Callable[[int], None]:
    """A function that sends ``n`` fresh signed Shopify webhooks to the intake (all must be accepted)."""
    sent = [0]

    def queue(n: int) -> None:
        first = 50_000_000 + sent[0]
        sent[0] += n
        payloads = [signed_order(first + i, i % CUSTOMERS, "127.0.0.1", ours) for i in range(n)]
        result = run_load("127.0.0.1", ours, payloads, concurrency)
        if set(result.statuses) != {202}:
            raise SystemExit(f"intake answered {result.statuses}")

    return queue


def run_workers(env: dict[str, str], count: int, worker_class: str | None = None) -> float:
    """Run ``count`` burst workers in parallel until the queues are empty; returns seconds.

    ``worker_class`` None runs the connector's default class (no ``--worker-class``).
    """
    started = time.perf_counter()
    chosen = [] if worker_class is None else ["--worker-class", worker_class]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "connector.cli", "worker", "--burst", *chosen],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    for worker in workers:
        worker.wait()
    return time.perf_counter() - started


def glu_activities(sandbox: int, kind: str | None = None) -> int:
    """How many activities (of one type) the Glu sandbox holds."""
    state = requests.get(f"http://127.0.0.1:{sandbox}/glu/_sandbox/state", timeout=60).json()
    return sum(1 for a in state["activities"] if kind is None or a["type"] == kind)


def raw(path: str, headers: dict[str, str], body: bytes, port: int) -> bytes:
    """A raw request to our web app."""
    return raw_request("127.0.0.1", port, path, headers, body)


def bench_pms(
    args: argparse.Namespace, env: dict[str, str], ours: int, sandbox: int, redis_url: str, summary: Summary
) -> None:
    """Scenario 3: Mews batches of 50 reservations: intake and worker throughput, then one message's time."""
    from redis import Redis

    messages = args.pms_messages
    say("\n[pms] Mews General Webhook messages with 50 reservations each (ServiceOrderUpdated + CustomerAdded)")
    intake_payloads = []
    for index in range(args.pms_intake):
        body, path = mews_batch(50, tenant="bench", token=MEWS_TOKEN, salt=f"intake-{uuid.uuid4().hex[:6]}-{index}")
        intake_payloads.append(raw(path, {"Content-Type": "application/json"}, body, ours))
    intake = run_load("127.0.0.1", ours, intake_payloads, args.concurrency)
    say(describe(f"{args.pms_intake} messages at the intake", intake))
    say(f"  = {intake.rate * 50:.0f} reservation events/s accepted ({len(intake_payloads[0]) // 1024} KiB per message)")
    Redis.from_url(redis_url).flushdb()  # the intake-only messages name reservations the sandbox does not hold
    say(
        f"  then {messages} messages whose reservations the Mews sandbox holds (every stay departed: Booking, "
        f"Checked in, Checked out each), {args.workers} workers"
    )
    payloads = []
    for index in range(messages):
        salt = f"bench-{uuid.uuid4().hex[:6]}-{index}"
        for collection, items in mews_batch_data(50, salt=salt).items():
            requests.post(f"http://127.0.0.1:{sandbox}/mews/_sandbox/{collection}", json=items, timeout=30)
        body, path = mews_batch(50, tenant="bench", token=MEWS_TOKEN, salt=salt)
        payloads.append(raw(path, {"Content-Type": "application/json"}, body, ours))
    before = glu_activities(sandbox)
    run_load("127.0.0.1", ours, payloads, min(args.concurrency, messages))
    seconds = run_workers(env, args.workers)
    made = glu_activities(sandbox) - before
    say(
        f"  {made} activities from {messages} messages in {seconds:.1f} s = {messages / seconds:.2f} messages/s, "
        f"{made / seconds:.0f} activities/s through the workers"
    )
    if made != messages * 150:
        raise SystemExit(f"expected {messages * 150} activities, got {made}")
    seconds = one_mews_message(env, args.workers, ours, sandbox)
    say(
        f"  one message of 50 reservations, {args.workers} workers already running: {seconds:.2f} s from the POST "
        f"to the last of its 150 activities at Glu (target < {PMS_TARGET_SECONDS:g} s)"
    )
    summary.add(Row("Mews message of 50 reservations, POST to last activity", seconds, "s", PMS_TARGET_SECONDS, False))


def one_mews_message(env: dict[str, str], workers: int, ours: int, sandbox: int) -> float:
    """Seconds from POSTing one Mews message of 50 reservations to the last of its 150 activities at Glu.

    The workers (long-running, default class) are started first and given time to start, so the
    figure is of the processing; the end is the Glu sandbox's ``createdAt`` of the last activity.
    """
    salt = f"one-{uuid.uuid4().hex[:6]}"
    for collection, items in mews_batch_data(50, salt=salt).items():
        requests.post(f"http://127.0.0.1:{sandbox}/mews/_sandbox/{collection}", json=items, timeout=30)
    body, path = mews_batch(50, tenant="bench", token=MEWS_TOKEN, salt=salt)
    before = glu_activities(sandbox)
    running = start_workers(env, workers)
    try:
        time.sleep(3.0)  # let the workers start before the clock does
        sent = time.time()
        answer = requests.post(
            f"http://127.0.0.1:{ours}{path}", data=body, headers={"Content-Type": "application/json"}, timeout=30
        )
        if answer.status_code != 202:
            raise SystemExit(f"the intake answered {answer.status_code} to the Mews message")
        deadline = time.monotonic() + 120
        while True:
            state = requests.get(f"http://127.0.0.1:{sandbox}/glu/_sandbox/state", timeout=60).json()
            new = state["activities"][before:]
            if len(new) >= 150 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        stop_workers(running)
    if len(new) != 150:
        raise SystemExit(f"expected 150 activities from the message, got {len(new)}")
    last = max(datetime.fromisoformat(a["createdAt"]).timestamp() for a in new)
    return last - sent


def bench_wifi(args: argparse.Namespace, env: dict[str, str], ours: int, sandbox: int) -> None:
    """Scenario 4: a Purple login storm."""
    guests, reconnects = args.wifi_guests, args.wifi_reconnects
    say(f"\n[wifi] Purple login storm: {guests} guests x {1 + reconnects} logins in one local day at one venue")
    payloads = [
        raw(path, headers, body, ours)
        for path, headers, body in wifi_login_storm(guests, reconnects, tenant="bench", token=PURPLE_TOKEN)
    ]
    before = glu_activities(sandbox, "Connected to wifi")
    result = run_load("127.0.0.1", ours, payloads, args.concurrency)
    say(describe("Purple logins", result))
    accepted = result.statuses.get(202, 0)
    seconds = run_workers(env, args.workers)
    made = glu_activities(sandbox, "Connected to wifi") - before
    say(
        f"  {accepted} of {len(payloads)} logins became jobs ({accepted / len(payloads):.0%}); the rest were "
        f"answered duplicate; {made} activities reached Glu ({made / len(payloads):.0%} of logins) in {seconds:.1f} s"
    )
    if made != guests:
        raise SystemExit(f"expected {guests} wifi activities, got {made}")


def bench_relay(args: argparse.Namespace, env: dict[str, str], ours: int, sandbox: int, summary: Summary) -> None:
    """Scenario 5: Voucherify customer.* events to Klaviyo with workers already running."""
    count = args.relay_events
    say(f"\n[relay] {count} signed Voucherify customer.* events to the Klaviyo sandbox, {args.workers} workers running")
    requests.post(f"http://127.0.0.1:{sandbox}/klaviyo/_sandbox/reset", timeout=10)
    events = list(voucherify_events(count, VOUCHERIFY_SECRET))
    payloads = [raw("/webhooks/bench/voucherify", headers, body, ours) for headers, body in events]
    event_ids = [json.loads(body)["event"]["id"] for _, body in events]
    workers = start_workers(env, args.workers)
    try:
        time.sleep(2.0)  # let the workers start before the clock does
        result = run_load("127.0.0.1", ours, payloads, args.concurrency)
        received = klaviyo_arrivals(sandbox, count, timeout=300)
    finally:
        stop_workers(workers)
    say(describe("Voucherify intake", result))
    latencies = sorted(
        received[eid] - sent for eid, sent in zip(event_ids, result.sent_at, strict=True) if eid in received
    )
    span = max(received.values()) - min(result.sent_at)
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    say(
        f"  burst: {len(received)} events at Klaviyo in {span:.1f} s = {len(received) / span:.0f} events/s end to end; "
        f"webhook to ESP p50 {p50:.0f} ms, p99 {p99:.0f} ms (queueing behind the burst)"
    )
    if len(received) != count:
        raise SystemExit(f"expected {count} events at Klaviyo, got {len(received)}")
    summary.add(
        Row(f"relay burst of {count} events, first sent to last at Klaviyo", span, "s", RELAY_TARGET_SECONDS, False)
    )
    paced = paced_latencies(args, env, ours, sandbox)
    say(
        f"  paced (one event every {1000 // args.relay_rate} ms, {len(paced)} events): webhook to ESP "
        f"p50 {percentile(paced, 0.5) * 1000:.0f} ms, p99 {percentile(paced, 0.99) * 1000:.0f} ms"
    )


def start_workers(env: dict[str, str], count: int) -> list[subprocess.Popen[bytes]]:
    """``count`` long-running worker processes: one ``connector worker --processes <count>``, the
    default deployment (a pool; stop it with :func:`stop_workers`). Each ``connector worker``
    starts as many processes as the machine has cores unless told otherwise: started ``count``
    times, as before, "two workers" were twice the cores' worth of processes."""
    return [
        subprocess.Popen(
            [sys.executable, "-m", "connector.cli", "worker", "--processes", str(count)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    """Stop workers gracefully and wait for them."""
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(timeout=30)


def klaviyo_arrivals(sandbox: int, expected: int, timeout: float) -> dict[str, float]:
    """Event id → arrival time at the Klaviyo sandbox, polled until ``expected`` arrived."""
    deadline = time.monotonic() + timeout
    received: dict[str, float] = {}
    while len(received) < expected and time.monotonic() < deadline:
        state = requests.get(f"http://127.0.0.1:{sandbox}/klaviyo/_sandbox/state", timeout=30).json()
        received = {e["unique_id"]: e["received_at"] for e in state["events"]}
        time.sleep(0.2)
    return received


def paced_latencies(args: argparse.Namespace, env: dict[str, str], ours: int, sandbox: int) -> list[float]:
    """Webhook-to-ESP latency at a steady low rate, with workers idle between events."""
    requests.post(f"http://127.0.0.1:{sandbox}/klaviyo/_sandbox/reset", timeout=10)
    events = list(voucherify_events(args.relay_paced, VOUCHERIFY_SECRET))
    workers = start_workers(env, args.workers)
    sent: dict[str, float] = {}
    try:
        time.sleep(2.0)
        session = requests.Session()
        for headers, body in events:
            sent[json.loads(body)["event"]["id"]] = time.time()
            session.post(f"http://127.0.0.1:{ours}/webhooks/bench/voucherify", data=body, headers=headers, timeout=10)
            time.sleep(1 / args.relay_rate)
        received = klaviyo_arrivals(sandbox, len(events), timeout=60)
    finally:
        stop_workers(workers)
    return sorted(received[k] - sent[k] for k in sent if k in received)


def tenants_toml(sandbox: int) -> str:
    """The bench tenant: every benchmarked source, Glu and Klaviyo sandboxes."""
    url = f"http://127.0.0.1:{sandbox}"
    return f"""
[tenants.bench]
timezone = "Europe/London"
[tenants.bench.loyalty]
platform = "glu"
base_url = "{url}/glu"
api_key = "{DEFAULT_KEYS["glu"]}"
[tenants.bench.sources.shopify]
shop_domain = "{SHOP}"
secrets = ["{SECRET}"]
[tenants.bench.sources.mews]
token = "{MEWS_TOKEN}"
api_url = "{url}/mews"
client_token = "{DEFAULT_KEYS["mews_client_token"]}"
access_token = "{DEFAULT_KEYS["mews_access_token"]}"
[tenants.bench.sources.purple]
token = "{PURPLE_TOKEN}"
[tenants.bench.sources.voucherify]
secrets = ["{VOUCHERIFY_SECRET}"]
[tenants.bench.esp]
provider = "klaviyo"
base_url = "{url}/klaviyo"
api_key = "{DEFAULT_KEYS["klaviyo"]}"
"""


def main() -> None:
    """Run the scenarios and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--requests", type=int, default=500, help="webhooks per server per intake round")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--paced-seconds", type=float, default=5, help="seconds of paced webhooks at half of the intake's peak"
    )
    parser.add_argument("--deliveries", type=int, default=300, help="webhooks per worker class per delivery round")
    parser.add_argument("--delivery-rounds", type=int, default=2, help="delivery rounds (class order alternates)")
    parser.add_argument("--noop-jobs", type=int, default=1000, help="RQ no-op jobs per anchor run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--footprint-webhooks", type=int, default=500, help="webhooks whose Redis bytes are measured")
    parser.add_argument("--rss-webhooks", type=int, default=10_000, help="webhooks before the web RSS is read")
    parser.add_argument("--roundtrip-webhooks", type=int, default=200, help="webhooks whose round trips are counted")
    parser.add_argument(
        "--roundtrip-worker-class",
        choices=("default", "fork", "simple"),
        default="default",
        help="worker class of the counted workers (default: the connector's default)",
    )
    parser.add_argument("--pms-messages", type=int, default=4)
    parser.add_argument("--pms-intake", type=int, default=400)
    parser.add_argument("--wifi-guests", type=int, default=300)
    parser.add_argument("--wifi-reconnects", type=int, default=5)
    parser.add_argument("--relay-events", type=int, default=300)
    parser.add_argument("--relay-paced", type=int, default=40)
    parser.add_argument("--relay-rate", type=int, default=5, help="events per second in the paced run")
    parser.add_argument("--slow", type=int, default=100, help="slow connections held open in the slow scenario")
    parser.add_argument("--slow-webhooks", type=int, default=150, help="normal webhooks sent meanwhile")
    parser.add_argument("--slow-rate", type=float, default=10, help="normal webhooks per second meanwhile")
    parser.add_argument("--slow-deadline", type=float, default=5, help="seconds before a webhook counts as lost")
    parser.add_argument(
        "--appendfsync",
        choices=("always", "everysec"),
        default="always",
        help="the main embedded Redis's fsync policy (the intake comparison always has an everysec one too)",
    )
    parser.add_argument(
        "--redis-tcp",
        action="store_true",
        help="reach the embedded Redis over TCP loopback instead of its Unix socket "
        "(as a Redis on another host would be reached)",
    )
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {SCENARIOS}")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {SCENARIOS}")

    summary = Summary()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        # The default (issue 11, item 5): every write fsynced before the 2xx. A second server with
        # everysec measures what that costs at the intake.
        redis = stack.enter_context(embedded_redis(Path(tmp) / "redis", args.appendfsync))
        everysec = stack.enter_context(embedded_redis(Path(tmp) / "redis-everysec", "everysec"))
        sandbox_port = free_port()
        tenants = Path(tmp) / "tenants.toml"
        tenants.write_text(tenants_toml(sandbox_port))
        redis_url = redis.url if args.redis_tcp else redis.local_url
        everysec_url = everysec.url if args.redis_tcp else everysec.local_url
        env = {**os.environ, "REDIS_URL": redis_url, "CONNECTOR_TENANTS_FILE": str(tenants), "PYTHONPATH": str(ROOT)}
        for variable in ("CONNECTOR_WEB_THREADS", "CONNECTOR_WEB_WORKER_CLASS"):
            env.pop(variable, None)  # the defaults of config/gunicorn.conf.py are what is measured
        transport = "TCP loopback" if redis_url.startswith("redis://") else "its Unix socket"
        say(
            f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
            f"before the run; Python {sys.version.split()[0]}; Redis embedded with AOF "
            f"(appendfsync {args.appendfsync}; a second one with everysec), reached over {transport}; "
            "load generator on the same machine"
        )
        sandbox_process = stack.enter_context(
            process(
                [sys.executable, "-m", "connector.cli", "sandbox", "--port", str(sandbox_port)],
                env,
                answers(f"http://127.0.0.1:{sandbox_port}/"),
                "sandbox",
            )
        )
        sync = {"CONNECTOR_WEB_THREADS": "1"}  # the old default: sync workers
        specs = {
            "bare": ("bare Flask endpoint, gthread (default)", "bench.bare:app", {}),
            "ours": ("connector intake, gthread (default)", "wsgi:app", {}),
            "ours_everysec": ("connector intake, gthread, Redis everysec", "wsgi:app", {"REDIS_URL": everysec_url}),
            "bare_sync": ("bare Flask endpoint, sync (old default)", "bench.bare:app", sync),
            "ours_sync": ("connector intake, sync (old default)", "wsgi:app", sync),
        }
        if not {"intake", "slow"} & set(chosen):
            specs = {"ours": specs["ours"]}
        servers = {key: Server(label, free_port()) for key, (label, _, _) in specs.items()}
        for key, (label, app, extra) in specs.items():
            port = servers[key].port
            probe = (
                answers(f"http://127.0.0.1:{port}/healthz")
                if app == "wsgi:app"
                else answers(f"http://127.0.0.1:{port}/webhooks/x/y", "POST")
            )
            web = stack.enter_context(
                process(
                    [gunicorn_binary(), "-c", "config/gunicorn.conf.py", app],
                    {**env, **extra, "CONNECTOR_BIND": f"127.0.0.1:{port}"},
                    probe,
                    label,
                )
            )
            servers[key].pid = web.pid
            if app == "wsgi:app":  # the CPU split counts the Redis each intake writes to
                redis_process = everysec.process if key == "ours_everysec" else redis.process
                servers[key].redis_pid = redis_process.pid if redis_process else None
        ours = servers["ours"].port
        if "intake" in chosen:
            intake_ratios = bench_intake(args, servers, summary)
            # -- issue 16 bench: the intake's ratios to the bare endpoint in the summary --
            for label, ratio in intake_ratios.items():
                if label.startswith("intake / bare") and "gthread" in label:
                    summary.add(Row(label, ratio * 100, "%", INTAKE_TARGET, at_least=True, anchor="bare", ratio=ratio))
            # -- end issue 16 bench --
        if "slow" in chosen:
            bench_slow_clients(args, servers)
        if "delivery" in chosen:
            queue = queue_shopify_webhooks(ours, args.concurrency)
            pids = {"sandbox": sandbox_process.pid, **({"Redis": redis.process.pid} if redis.process else {})}
            bench_workers(args, env, redis_url, sandbox_port, queue, summary, pids)
        if "footprint" in chosen:
            bench_footprint(args, summary)
        if "roundtrips" in chosen:
            bench_roundtrips(args, summary)
        if "pms" in chosen:
            bench_pms(args, env, ours, sandbox_port, redis_url, summary)
        if "wifi" in chosen:
            bench_wifi(args, env, ours, sandbox_port)
        if "relay" in chosen:
            bench_relay(args, env, ours, sandbox_port, summary)
        say("\n[summary] every figure with its anchor in this run, its target and the verdict")
        for line in summary.table():
            say(line)
        say(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")


def gunicorn_binary() -> str:
    """The gunicorn next to this Python."""
    return str(Path(sys.executable).parent / "gunicorn")


@contextmanager
def embedded_redis(data_dir: Path, appendfsync: str) -> Iterator[EmbeddedRedis]:
    """An embedded Redis with the append-only file on and the given ``appendfsync`` policy.

    Set with ``CONFIG SET`` after start, so this works whatever policy ``EmbeddedRedis`` starts with.
    """
    from redis import Redis

    server = EmbeddedRedis(data_dir, appendonly=True).start()
    try:
        client = Redis(port=server.port)
        client.config_set("appendfsync", appendfsync)
        client.close()
        yield server
    finally:
        server.stop()


if __name__ == "__main__":
    main()
