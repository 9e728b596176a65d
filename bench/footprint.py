"""Redis bytes kept per pending job and per finished webhook; web and worker process memory.

On a stack of its own (Redis, sandbox, intake gunicorn, as ``make bench`` runs them):

1. ``--footprint-webhooks`` accepted 1 KB Shopify webhooks: Redis bytes per pending job (after
   the intake, before any worker) = (sum of ``MEMORY USAGE`` over every key found by ``SCAN``
   after - before) / N;
2. two long-running ``connector worker`` processes (default class) deliver them; their RSS is
   sampled when the last activity has reached the Glu sandbox; then they are stopped and the
   bytes kept per finished webhook are measured the same way;
3. ``--rss-webhooks`` more webhooks at the intake; the largest VmRSS among the gunicorn workers.

The key families (the key up to its second ``:``) with the most bytes are printed, so a reader
sees what is kept.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from redis import Redis

from bench.summary import Row, Summary

PENDING_TARGET = 4096  # bytes per pending job, 1 KB body
FINISHED_TARGET = 3072  # bytes kept per finished webhook
WEB_RSS_TARGET = 80  # MB, a gunicorn worker after 10,000 webhooks
WORKER_RSS_TARGET = 120  # MB, a connector worker after the deliveries


@dataclass(frozen=True)
class Footprint:
    """Bytes of every key in Redis, and by key family."""

    total: int
    families: Counter[str]
    keys: int

    def minus(self, before: Footprint) -> Footprint:
        """What this footprint holds beyond ``before``."""
        families = Counter(self.families)
        families.subtract(before.families)
        return Footprint(self.total - before.total, families, self.keys - before.keys)


def family(key: bytes) -> str:
    """A key's family: up to its second ``:`` (``rq:job``, ``rq:results``, ``connector:ledger``)."""
    return ":".join(key.decode(errors="replace").split(":")[:2])


def measure(redis: Redis) -> Footprint:
    """Sum ``MEMORY USAGE`` (all samples of nested values) over every key."""
    families: Counter[str] = Counter()
    total = keys = 0
    batch: list[bytes] = []

    def flush() -> None:
        nonlocal total
        with redis.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.memory_usage(key, samples=0)
            for key, used in zip(batch, pipe.execute(), strict=True):
                families[family(key)] += int(used or 0)  # a key gone since the SCAN counts 0
                total += int(used or 0)
        batch.clear()

    for key in redis.scan_iter(count=1000):
        keys += 1
        batch.append(key)
        if len(batch) >= 500:
            flush()
    if batch:
        flush()
    return Footprint(total, families, keys)


def top_families(footprint: Footprint, count: int, webhooks: int) -> str:
    """The ``count`` largest families, bytes per webhook each."""
    largest = [(name, size) for name, size in footprint.families.most_common() if size > 0][:count]
    return ", ".join(f"{name} {size / webhooks:,.0f} B" for name, size in largest)


def rss_mb(pid: int) -> float:
    """A process's resident set (VmRSS) in MB, 0 when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    """The pids of a process's children (gunicorn's workers are its master's)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("PPid:") and int(line.split()[1]) == pid:
                found.append(int(status.parent.name))
                break
    return found


def wait_for_activities(sandbox: int, expected: int, timeout: float) -> None:
    """Poll the Glu sandbox until it holds ``expected`` activities."""
    from bench.__main__ import glu_activities

    deadline = time.monotonic() + timeout
    while glu_activities(sandbox) < expected:
        if time.monotonic() > deadline:
            raise SystemExit(f"fewer than {expected} activities at the Glu sandbox after {timeout:.0f} s")
        time.sleep(0.2)


def bench_footprint(args: argparse.Namespace, summary: Summary) -> None:
    """The scenario (see the module docstring)."""
    from bench.__main__ import queue_shopify_webhooks, say, start_workers, stop_workers
    from bench.stack import running_stack

    webhooks = args.footprint_webhooks
    say(
        f"\n[footprint] Redis bytes (MEMORY USAGE over every key) for {webhooks} accepted 1 KB Shopify webhooks, "
        f"pending and finished (2 long-running `connector worker`); gunicorn worker RSS after {args.rss_webhooks} "
        "more webhooks"
    )
    with running_stack() as stack:
        redis = Redis.from_url(stack.redis_url)
        queue = queue_shopify_webhooks(stack.intake, args.concurrency)
        queue(20)  # warm-up, and the tenant's one-off keys (secret key, contact cache) exist before
        workers = start_workers(stack.env, args.workers)
        try:
            wait_for_activities(stack.sandbox, 20, 120)
        finally:
            stop_workers(workers)
        before = measure(redis)
        queue(webhooks)
        pending = measure(redis).minus(before)
        say(
            f"  pending: {pending.total / webhooks:,.0f} B per job ({pending.keys / webhooks:.1f} keys); "
            f"top: {top_families(pending, 5, webhooks)}"
        )
        workers = start_workers(stack.env, args.workers)
        try:
            wait_for_activities(stack.sandbox, 20 + webhooks, 600)
            time.sleep(1.0)  # the last jobs' completion writes land after their activity
            # a worker's children too: a pool of worker processes or a horse mid-job
            worker_rss = max(rss_mb(pid) for worker in workers for pid in (worker.pid, *children(worker.pid)))
        finally:
            stop_workers(workers)
        finished = measure(redis).minus(before)
        say(
            f"  finished: {finished.total / webhooks:,.0f} B kept per webhook ({finished.keys / webhooks:.1f} keys); "
            f"top: {top_families(finished, 6, webhooks)}"
        )
        say(f"  => {finished.total / webhooks * 10_000 / 1e6:.0f} MB kept per 10,000 webhooks")
        say(f"  connector worker RSS at the end of the deliveries: {worker_rss:.0f} MB (largest process)")
        queue(args.rss_webhooks)
        web = children(stack.intake_pid)
        web_rss = max((rss_mb(pid) for pid in web), default=0.0)
        served = args.rss_webhooks + webhooks + 20
        say(f"  gunicorn worker RSS after {served} webhooks: {web_rss:.0f} MB (largest of {len(web)} workers)")
        redis.flushdb()
    summary.add(Row("Redis per pending job (1 KB body)", pending.total / webhooks, "B", PENDING_TARGET, at_least=False))
    summary.add(Row("Redis kept per finished webhook", finished.total / webhooks, "B", FINISHED_TARGET, at_least=False))
    summary.add(Row(f"gunicorn worker RSS after {served:,} webhooks", web_rss, "MB", WEB_RSS_TARGET, at_least=False))
    summary.add(Row("connector worker RSS after deliveries", worker_rss, "MB", WORKER_RSS_TARGET, at_least=False))
