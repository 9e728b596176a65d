"""Delivery against its anchors, measured on the same Redis and sandbox in the same run.

Per worker class (fork, simple), in rounds whose order alternates:

- **delivery**: ``--deliveries`` accepted Shopify webhooks (intake → ingest job → delivery job →
  Glu sandbox) drained by ``--workers`` ``connector worker --burst --worker-class <class>``;
- **RQ no-op anchor**: ``--noop-jobs`` jobs of :func:`bench.noop.noop` enqueued with RQ's JSON
  serializer, drained by ``--workers`` stock ``rq worker --burst`` processes of the same class
  (``rq.Worker`` forks a horse per job, ``rq.SimpleWorker`` does not);
- **keep-alive anchor**: one Python process (this one) posts the activities the delivery stored at
  the Glu sandbox again (fresh references) over one ``requests.Session``.

Rates are of draining, not of starting: each counts the completions between the first and the
last one (:func:`completion_rate`), from the times they were recorded at, the Glu sandbox's
``createdAt`` of each activity and RQ's ``ended_at`` of each no-op job. (Subtracting a burst
worker's start-up on empty queues, the first method, left a drain of 300 webhooks of under half
a second next to a second or so of start-up noise.) Printed: webhooks/s per worker process,
the ratio to the no-op jobs/s per process of the same class (target >= 0.7) and to the keep-alive
posts/s (target >= 0.35).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from bench.cpu import CpuMeter, CpuSplit, own_cpu, reaped_children_cpu, tree_cpu
from bench.summary import Row, Summary

ROOT = Path(__file__).resolve().parent.parent
NOOP_QUEUE = "bench-noop"
STOCK_CLASSES = {"fork": "rq.worker.Worker", "simple": "rq.worker.SimpleWorker"}
DELIVERY_TARGET = 0.7  # x the no-op job rate per process of the same class
KEEPALIVE_TARGET = 0.35  # x one process posting the same activities over keep-alive


@dataclass
class ClassFigures:
    """Rates per process measured for one worker class, one value per round."""

    delivery: list[float] = field(default_factory=list)  # webhooks/s per worker process
    noop: list[float] = field(default_factory=list)  # no-op jobs/s per worker process


def burst(argv: list[str], env: dict[str, str], count: int) -> None:
    """Run ``count`` copies of ``argv`` in parallel until all exit.

    Each copy's stderr goes to a file of its own, read only when it fails. (Through pipes read
    one after the other, a second worker's pipe filled with its log lines, about 1 KB a webhook
    at the default INFO level, while the first was waited for: the second then stopped after
    some 60 webhooks and the first drained the rest, which halved the delivery rate per process
    that was printed. RQ's ``--quiet`` no-op workers log nothing, so the anchor never stalled.)
    """
    with tempfile.TemporaryDirectory(prefix="bench-burst-") as folder:
        logs = [(Path(folder) / f"{index}.log").open("wb") for index in range(count)]
        processes = [subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log) for log in logs]
        for proc in processes:
            proc.wait()
        for log in logs:
            log.close()
        for index, proc in enumerate(processes):
            if proc.returncode != 0:
                err = (Path(folder) / f"{index}.log").read_text(errors="replace")
                raise SystemExit(f"{' '.join(argv[:4])} exited {proc.returncode}: {err[-2000:]}")


def connector_worker(worker_class: str) -> list[str]:
    """``connector worker --burst --worker-class <class>`` (the public entry point)."""
    return [sys.executable, "-m", "connector.cli", "worker", "--burst", "--worker-class", worker_class]


def stock_worker(worker_class: str, redis_url: str) -> list[str]:
    """RQ's own ``rq worker --burst`` with the JSON serializer on the no-op queue."""
    rq = str(Path(sys.executable).parent / "rq")
    serializer = ["-S", "rq.serializers.JSONSerializer"]
    return [
        rq,
        "worker",
        "--burst",
        "--quiet",
        "--url",
        redis_url,
        "-w",
        STOCK_CLASSES[worker_class],
        *serializer,
        NOOP_QUEUE,
    ]


def completion_rate(times: list[datetime]) -> float:
    """Completions per second between the first and the last of ``times`` (``len - 1`` intervals)."""
    if len(times) < 2:
        raise SystemExit(f"cannot measure a rate from {len(times)} completion(s)")
    span = (max(times) - min(times)).total_seconds()
    return (len(times) - 1) / max(span, 1e-6)


def noop_rate(redis_url: str, env: dict[str, str], worker_class: str, jobs: int, workers: int) -> float:
    """No-op jobs/s per stock RQ worker process of ``worker_class``, between the first and the
    last job's ``ended_at`` (RQ keeps finished jobs for 500 s by default)."""
    argv = stock_worker(worker_class, redis_url)
    redis = Redis.from_url(redis_url)
    queue = Queue(NOOP_QUEUE, connection=redis, serializer=JSONSerializer)
    with redis.pipeline() as pipe:
        ids = [queue.enqueue("bench.noop.noop", pipeline=pipe).id for _ in range(jobs)]
        pipe.execute()
    burst(argv, env, workers)
    left = queue.count
    if left:
        raise SystemExit(f"{left} no-op jobs left in the queue")
    with redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(f"rq:job:{job_id}", "ended_at")
        ended = [datetime.fromisoformat(value.decode()) for value in pipe.execute() if value]
    if len(ended) != jobs:
        raise SystemExit(f"{jobs - len(ended)} no-op jobs have no ended_at")
    return completion_rate(ended) / workers


def delivery_rate(
    env: dict[str, str],
    worker_class: str,
    webhooks: int,
    workers: int,
    queue_webhooks: Callable[[int], None],
    sandbox: int,
    meter: CpuMeter | None = None,
) -> tuple[float, list[dict[str, Any]]]:
    """Webhooks/s per ``connector worker`` process of ``worker_class``, between the first and
    the last activity the Glu sandbox stored (each webhook is one activity), and those activities
    (``meter``: around the workers' run only, not the queueing)."""
    queue_webhooks(webhooks)
    with meter or contextlib.nullcontext():
        burst(connector_worker(worker_class), env, workers)
    state = requests.get(f"http://127.0.0.1:{sandbox}/glu/_sandbox/state", timeout=60).json()
    activities: list[dict[str, Any]] = state["activities"]
    times = [datetime.fromisoformat(activity["createdAt"]) for activity in activities]
    return completion_rate(times) / workers, activities


def posted_bodies(activities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Glu sandbox's stored ``activities`` as the bodies that were posted."""
    bodies = []
    for activity in activities:
        body = {k: v for k, v in activity.items() if k not in ("id", "createdAt")}
        contact = str(body["contact"])
        body["contact"] = int(contact.rsplit("/", 1)[-1]) if contact.rsplit("/", 1)[-1].isdigit() else contact
        bodies.append(body)
    return bodies


def keepalive_rate(sandbox: int, api_key: str, bodies: list[dict[str, Any]]) -> float:
    """Posts/s of one process posting ``bodies`` (fresh references) over one session."""
    session = requests.Session()
    session.headers.update({"x-api-key": api_key, "Content-Type": "application/json"})
    url = f"http://127.0.0.1:{sandbox}/glu/activities"
    run = uuid.uuid4().hex[:8]
    fresh = [{**body, "externalReference": f"anchor-{run}-{i}"} for i, body in enumerate(bodies)]
    started = time.perf_counter()
    for body in fresh:
        response = session.post(url, json=body, timeout=10)
        if response.status_code != 201:
            raise SystemExit(f"the Glu sandbox answered {response.status_code} to an anchor post: {response.text}")
    return len(fresh) / (time.perf_counter() - started)


def delivery_meter(pids: dict[str, int] | None) -> CpuMeter:
    """CPU of the burst's worker processes (they end within the run), the Redis and the sandbox."""
    groups: dict[str, Callable[[], float]] = {"workers": reaped_children_cpu}
    for name, pid in (pids or {}).items():
        groups[name] = functools.partial(tree_cpu, pid)
    return CpuMeter(groups)


def anchor_groups(pids: dict[str, int] | None) -> dict[str, Callable[[], float]]:
    """CPU of the keep-alive anchor: this process posting, and the sandbox answering."""
    groups: dict[str, Callable[[], float]] = {"poster": own_cpu}
    if pids and "sandbox" in pids:
        groups["sandbox"] = functools.partial(tree_cpu, pids["sandbox"])
    return groups


def say_delivery_cpu(delivery: dict[str, CpuSplit], startup: dict[str, CpuSplit], anchor: CpuSplit) -> None:
    """CPU per webhook of the deliveries (the workers' start-up and exit, measured on an empty
    queue each round, taken off) and per post of the keep-alive anchor, by process."""
    from bench.__main__ import say

    say("  CPU per webhook, all rounds (us; the workers' start-up and exit on an empty queue taken off):")
    for name, split in delivery.items():
        if not split.requests:
            continue
        parts = []
        for group in split.seconds:
            value = split.per_request_us(group) - startup[name].per_request_us(group)
            parts.append(f"{group} {value:5.0f}")
        total = split.total_us() - startup[name].total_us()
        say(f"    --worker-class {name:<6} {'   '.join(parts)}   total {total:5.0f}")
    if anchor.requests:
        parts = [f"{group} {anchor.per_request_us(group):5.0f}" for group in anchor.seconds]
        say(f"    keep-alive anchor, per post: {'   '.join(parts)}   total {anchor.total_us():5.0f}")


def bench_workers(
    args: argparse.Namespace,
    env: dict[str, str],
    redis_url: str,
    sandbox: int,
    queue_webhooks: Callable[[int], None],
    summary: Summary,
    pids: dict[str, int] | None = None,
) -> None:
    """The scenario: rounds of delivery and no-op per class, keep-alive posts, ratios, rows
    (``pids``: the ``sandbox`` and ``Redis`` processes, for the CPU split)."""
    from bench.__main__ import say
    from connector.sandbox.server import DEFAULT_KEYS

    classes = ("fork", "simple")
    say(
        f"\n[delivery] per worker class, {args.delivery_rounds} rounds (order alternating): {args.deliveries} accepted "
        f"Shopify webhooks drained by {args.workers} `connector worker --burst` (Glu sandbox: contact, activity, "
        f"ledger); anchors: {args.noop_jobs} RQ no-op jobs (JSON serializer) drained by {args.workers} stock "
        f"`rq worker --burst` of the same class; one process posting the same activities over keep-alive. "
        "Rates between the first and the last completion (activity createdAt at the sandbox, RQ's ended_at)."
    )
    figures = {name: ClassFigures() for name in classes}
    keepalive: list[float] = []
    delivery_cpu = {name: CpuSplit() for name in classes}
    startup_cpu = {name: CpuSplit() for name in classes}
    anchor_cpu = CpuSplit()
    for round_number in range(1, args.delivery_rounds + 1):
        order = classes if round_number % 2 else classes[::-1]
        for name in order:
            Redis.from_url(redis_url).flushdb()
            requests.post(f"http://127.0.0.1:{sandbox}/glu/_sandbox/reset", timeout=5)
            meter = delivery_meter(pids)
            rate, activities = delivery_rate(env, name, args.deliveries, args.workers, queue_webhooks, sandbox, meter)
            delivery_cpu[name].add(args.deliveries, meter.spent)
            with delivery_meter(pids) as idle:  # the same workers on an empty queue: start-up and exit
                burst(connector_worker(name), env, args.workers)
            startup_cpu[name].add(args.deliveries, idle.spent)
            figures[name].delivery.append(rate)
            bodies = posted_bodies(activities)
            if len(bodies) != args.deliveries:
                raise SystemExit(f"expected {args.deliveries} activities, the sandbox holds {len(bodies)}")
            figures[name].noop.append(noop_rate(redis_url, env, name, args.noop_jobs, args.workers))
            with CpuMeter(anchor_groups(pids)) as anchor:
                keepalive.append(keepalive_rate(sandbox, DEFAULT_KEYS["glu"], bodies))
            anchor_cpu.add(len(bodies), anchor.spent)
            say(
                f"  round {round_number} {name:<6}: delivery {figures[name].delivery[-1]:6.1f} webhooks/s per process, "
                f"RQ no-op {figures[name].noop[-1]:6.1f} jobs/s per process, keep-alive {keepalive[-1]:6.0f} posts/s"
            )
    posts = statistics.median(keepalive)
    say(f"  medians over the rounds; keep-alive anchor {posts:.0f} posts/s (one process, one session)")
    say_delivery_cpu(delivery_cpu, startup_cpu, anchor_cpu)
    for name in classes:
        delivery = statistics.median(figures[name].delivery)
        noop = statistics.median(figures[name].noop)
        say(
            f"  --worker-class {name:<6} {delivery:6.1f} webhooks/s per process ({delivery * args.workers:.0f} with "
            f"{args.workers}); RQ no-op {noop:.0f} jobs/s per process: {delivery / noop:.2f}x (target "
            f">= {DELIVERY_TARGET}); keep-alive {delivery / posts:.2f}x (target >= {KEEPALIVE_TARGET})"
        )
        summary.add(
            Row(
                f"delivery per {name} worker / RQ no-op",
                delivery,
                "webhooks/s",
                DELIVERY_TARGET,
                at_least=True,
                anchor=f"{noop:.0f} no-op jobs/s ({STOCK_CLASSES[name].rsplit('.', 1)[-1]})",
                ratio=delivery / noop,
            )
        )
        summary.add(
            Row(
                f"delivery per {name} worker / keep-alive posts",
                delivery,
                "webhooks/s",
                KEEPALIVE_TARGET,
                at_least=True,
                anchor=f"{posts:.0f} posts/s (1 process)",
                ratio=delivery / posts,
            )
        )
