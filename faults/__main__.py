"""``make faults``: N logical webhooks through the real stack while its parts fail, then a report.

Run: ``python -m faults --webhooks 10000`` (``--help`` lists the knobs). What it does:

1. starts embedded Redis (AOF on, own data directory), the sandbox server, the web app under
   gunicorn and several ``connector worker`` processes (pools of simple workers, the default; fork;
   simple) — all on loopback;
2. arms the sandboxes: 10 % 500s on every vendor call, a share of creates that are stored and
   then have their answer dropped (``drop_after``), and bursts of 429 with ``Retry-After``;
3. sends every logical webhook three times (some copies concurrently), signed on the fly, with a
   sender that retries 503s and connection errors a bounded number of times;
4. meanwhile SIGKILLs a worker every few seconds (sometimes with its work horse; mostly a pool's
   child, which its pool replaces) and starts a
   replacement, restarts any worker that exits by itself (counted), and SIGKILLs Redis once and
   restarts it on the same data directory;
5. drains — 500s and drop_after go on, worker kills until fewer than 50 jobs are left — until the
   queues and the scheduled and started registries are empty (or nothing moved for
   ``--stall-timeout`` seconds), and reports per family and in total: lost, doubled, failed with
   reasons, acknowledged-but-never-run, unfinished, and the worst lateness of a scheduled retry.

Exits 1 when a target is missed: 0 lost, 0 doubled, every failure with a reason, 0 never-run,
worst retry lateness < 5 s. Every process it started is stopped at the end, on Ctrl-C or error.
"""

from __future__ import annotations

import argparse
import heapq
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from types import FrameType

import requests
from redis import Redis

from connector.queue import QUEUE_NAMES, get_queue
from faults.report import FamilyReport, build_report, text
from faults.stack import Stack
from faults.traffic import FAMILIES, LogicalWebhook, Traffic, tenants_toml

DESTINATIONS = ("glu", "loyaltylion", "voucherify", "klaviyo", "mailchimp")
PMS = ("mews", "apaleo", "cloudbeds")
CREATE_PATHS = {
    "glu": ["/activities"],
    "loyaltylion": ["/v2/activities", "/v2/orders"],
    "voucherify": ["/v1/events"],
    "klaviyo": ["/api/events/"],
    "mailchimp": ["/events"],
}
LATENESS_TARGET = 5.0


def say(message: str) -> None:
    """Progress output, time-stamped."""
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


class Sender:
    """Delivers logical webhooks like a real sender: retries 5xx and connection errors, bounded."""

    def __init__(self, base_url: str, attempts: int) -> None:
        self.base_url = base_url
        self.attempts = attempts
        self.lock = threading.Lock()
        self.answers: Counter[str] = Counter()  # every attempt's answer
        self.gave_up = 0
        self.local = threading.local()

    def deliver(self, webhook: LogicalWebhook) -> None:
        """One delivery of ``webhook`` (re-signed on each attempt)."""
        status = 0
        for attempt in range(self.attempts):
            path, headers, body = webhook.build()
            try:
                response = requests.post(
                    self.base_url + path, data=body, headers={**headers, "Connection": "close"}, timeout=10
                )
                status = response.status_code
                answer = str(status)
            except requests.RequestException as exc:
                status, answer, response = 0, type(exc).__name__, None
            with self.lock:
                self.answers[answer] += 1
            if response is not None and 200 <= status < 300:
                try:
                    document = response.json()
                except ValueError:
                    document = {}
                if isinstance(document, dict) and document.get("job"):
                    webhook.job_ids.add(str(document["job"]))
                elif isinstance(document, dict) and document.get("status") == "ignored":
                    webhook.ignored_at_intake = str(document.get("reason", ""))
                break
            if response is not None and status < 500:
                break  # a 4xx is final for a real sender too
            time.sleep(min(8.0, 0.25 * 2**attempt) * (1 + random.random() / 2))
        else:
            with self.lock:
                self.gave_up += 1
        webhook.statuses.append(status)


class RetryWatch:
    """Measures how late scheduled retries run: polls the scheduled registries twice a second.

    A job leaving a scheduled registry was enqueued by RQ's scheduler; its hash then says when it
    was enqueued (``enqueued_at``) and started (``started_at``). Lateness = those minus the time
    it was due. ``worst_overdue`` is the longest a job sat in the registry past its time.
    """

    def __init__(self, client: Redis) -> None:
        self.client = client
        self.scheduled: dict[str, float] = {}
        self.left: dict[str, tuple[float, bool]] = {}  # job id → (due, enqueue lateness recorded)
        self.worst_enqueue = 0.0
        self.worst_start = 0.0
        self.worst_overdue = 0.0
        self.measured = 0
        self.stop = threading.Event()

    @staticmethod
    def _stamp(raw: object) -> float | None:
        if not raw:
            return None
        return datetime.fromisoformat(text(raw).replace("Z", "+00:00")).timestamp()

    def poll(self) -> None:
        """One look at the registries and at jobs that left them."""
        now = time.time()
        current: dict[str, float] = {}
        for name in QUEUE_NAMES:
            registry = get_queue(self.client, name).scheduled_job_registry
            for member, score in self.client.zrange(registry.key, 0, -1, withscores=True):  # type: ignore[str-unpack]  # redis-py types zrange as list[str]
                current[text(member)] = float(score)
        overdue = [now - due for due in current.values() if due < now]
        self.worst_overdue = max([self.worst_overdue, *overdue])
        for job_id, due in self.scheduled.items():
            if current.get(job_id) != due:
                self.left[job_id] = (due, False)
        self.scheduled = current
        for job_id, (due, enqueue_seen) in list(self.left.items()):
            enqueued, started = (
                self._stamp(v) for v in self.client.hmget(f"rq:job:{job_id}", "enqueued_at", "started_at")
            )
            if not enqueue_seen and enqueued is not None and enqueued >= due - 1:
                self.worst_enqueue = max(self.worst_enqueue, enqueued - due)
                self.left[job_id] = (due, True)
            if started is not None and started >= due - 1:
                self.worst_start = max(self.worst_start, started - due)
                self.measured += 1
                del self.left[job_id]
            elif now - due > 900:
                del self.left[job_id]

    def run(self) -> None:
        """Poll until stopped (Redis outages are sat out)."""
        while not self.stop.wait(0.5):
            try:
                self.poll()
            except Exception:  # noqa: S112 - Redis down or restarting: try again next tick
                continue

    @property
    def worst(self) -> float:
        """The worst lateness of a retry reaching its queue (or still waiting for it)."""
        return max(self.worst_enqueue, self.worst_overdue)


def queue_state(client: Redis) -> dict[str, int]:
    """Queued, scheduled, started and failed jobs over every queue."""
    state: Counter[str] = Counter()
    for name in QUEUE_NAMES:
        queue = get_queue(client, name)
        state["queued"] += int(client.llen(queue.key))
        state["scheduled"] += int(client.zcard(queue.scheduled_job_registry.key))
        state["started"] += int(client.zcard(queue.started_job_registry.key))
        state["failed"] += int(client.zcard(queue.failed_job_registry.key))
    return dict(state)


class Faults:
    """The process faults of the send phase, in a thread."""

    def __init__(self, stack: Stack, args: argparse.Namespace, rng: random.Random, send_seconds: float) -> None:
        self.stack, self.args, self.rng = stack, args, rng
        self.redis_at = send_seconds * args.redis_at if args.redis_kill else None
        self.stop = threading.Event()
        self.calm = threading.Event()  # set near the end of the drain: no more kills, so it can settle
        self.sending = threading.Event()  # 429 bursts only while webhooks are being sent
        self.sending.set()
        self.lock = threading.Lock()  # the drain's worker replacement must not race a kill
        self.started = time.monotonic()

    def run(self) -> None:
        """Kill workers, kill Redis once, arm 429 bursts, until stopped."""
        next_kill = self.args.kill_every or float("inf")
        next_burst = self.args.burst_every or float("inf")
        while not self.stop.wait(0.25):
            elapsed = time.monotonic() - self.started
            try:
                with self.lock:
                    for note in self.stack.replace_exited_workers():
                        say(note)
                    if elapsed >= next_kill and not self.calm.is_set():
                        next_kill += self.args.kill_every
                        say(self.stack.kill_worker(self.rng, with_horse=self.rng.random() < 0.5))
                    if self.redis_at is not None and elapsed >= self.redis_at:
                        self.redis_at = None
                        say("SIGKILL Redis")
                        self.stack.kill_redis()
                        time.sleep(self.args.redis_down)
                        self.stack.restart_redis()
                        say(f"Redis restarted on the same data directory after {self.args.redis_down:.0f} s")
                if elapsed >= next_burst and self.sending.is_set():
                    next_burst += self.args.burst_every
                    vendor = self.rng.choice([v.strip() for v in self.args.burst_at.split(",") if v.strip()])
                    self.stack.arm(vendor, {"mode": "status", "status": 429, "retry_after": 2, "count": 15})
                    say(f"429 burst (15 calls, Retry-After 2) armed at {vendor}")
            except Exception as exc:
                say(f"fault action failed: {exc!r}")


def arm_sandboxes(stack: Stack, args: argparse.Namespace) -> None:
    """Steady faults for the whole send phase: 500s on a share of all calls, drop_after on creates."""
    forever = 1_000_000_000
    for vendor in (*DESTINATIONS, *PMS):
        if args.error_rate:
            stack.arm(vendor, {"mode": "status", "status": 500, "probability": args.error_rate, "count": forever})
    if args.drop_rate:
        for vendor in filter(None, (v.strip() for v in args.drop_at.split(","))):
            for path in CREATE_PATHS[vendor]:
                stack.arm(vendor, {"mode": "drop_after", "path": path, "probability": args.drop_rate, "count": forever})


def send_all(
    stack: Stack,
    webhooks: list[LogicalWebhook],
    args: argparse.Namespace,
    rng: random.Random,
    sender: Sender,
    progress: threading.Event,
) -> None:
    """Three deliveries of every webhook at ``--rate`` logical webhooks/s; some copies concurrent."""
    plan: list[tuple[float, int, LogicalWebhook]] = []
    for webhook in webhooks:
        first = webhook.index / args.rate
        second = first if rng.random() < 0.35 else first + rng.uniform(0.2, 3)  # 35 %: two copies at once
        third = first + rng.uniform(min(2.0, args.redeliver_within), args.redeliver_within)
        for seq, due in enumerate((first, second, third)):
            plan.append((due, webhook.index * 3 + seq, webhook))
    heapq.heapify(plan)
    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=args.senders, thread_name_prefix="sender")
    try:
        futures = []
        while plan:
            due, _, webhook = plan[0]
            wait = started + due - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, 0.05))
                continue
            heapq.heappop(plan)
            futures.append(pool.submit(sender.deliver, webhook))
        for future in futures:
            future.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # on Ctrl-C, nothing more is sent
    progress.set()


def print_progress(
    stack: Stack,
    webhooks: list[LogicalWebhook],
    sender: Sender,
    watch: RetryWatch,
    done: threading.Event,
    every: float,
    started: float,
) -> None:
    """A line every ``every`` seconds until ``done``."""
    while not done.wait(every):
        delivered = sum(len(w.statuses) for w in webhooks)
        try:
            state = queue_state(stack.client())
        except Exception:
            state = {"redis": 0}
        say(
            f"t+{time.monotonic() - started:5.0f}s deliveries {delivered}/{3 * len(webhooks)} "
            f"answers {dict(sender.answers.most_common(6))} jobs {state} kills {stack.worker_kills} "
            f"self-exits {stack.unexpected_exits} retry overdue max {watch.worst_overdue:.1f}s"
        )


def drain(stack: Stack, faults: Faults, timeout: float, stall: float) -> tuple[bool, float]:
    """Wait until nothing is queued, scheduled or started (twice in a row); (drained, seconds).

    Gives up after ``timeout`` seconds, or after ``stall`` seconds in which nothing moved (the
    queues, registries and finished count all unchanged): work that no process is doing.
    """
    started = time.monotonic()
    calm = 0
    last: dict[str, int] | None = None
    moved = said = started - 10
    while time.monotonic() - started < timeout:
        with faults.lock:
            for note in stack.replace_exited_workers():
                say(note)
        try:
            client = stack.client()
            state = queue_state(client)
            state["finished"] = sum(
                int(client.zcard(get_queue(client, name).finished_job_registry.key)) for name in QUEUE_NAMES
            )
        except Exception:
            time.sleep(1)
            continue
        busy = state["queued"] + state["scheduled"] + state["started"]
        if busy < 50 and not faults.calm.is_set():
            faults.calm.set()
            say("fewer than 50 jobs left: no more worker kills")
        calm = calm + 1 if busy == 0 else 0
        if calm >= 2:
            return True, time.monotonic() - started
        if state != last:
            moved = time.monotonic()
            if time.monotonic() - said >= 10:  # a line every 10 s at most
                say(f"draining: {state}")
                said = time.monotonic()
            last = state
        elif time.monotonic() - moved > stall:
            say(f"nothing moved for {stall:.0f} s: {state}")
            return False, time.monotonic() - started
        time.sleep(1)
    return False, time.monotonic() - started


def print_report(families: dict[str, FamilyReport], orphans: list[str], doubles: list[str]) -> None:
    """The table and the grouped reasons."""
    columns = (
        "webhooks",
        "acked",
        "not acked",
        "delivered",
        "ignored",
        "failed",
        "never run",
        "unfinished",
        "lost",
        "doubled",
    )
    print("\n" + f"{'family':<9}" + "".join(f"{c:>11}" for c in columns))
    for name in (*FAMILIES, "total"):
        r = families[name]
        values = (
            r.webhooks,
            r.acknowledged,
            r.not_acknowledged,
            *(r.outcomes[k] for k in ("delivered", "ignored", "failed", "never_run", "unfinished", "lost")),
            r.doubled,
        )
        print(f"{name:<9}" + "".join(f"{v:>11}" for v in values))
    reasons = families["total"].reasons
    if reasons:
        print("\nreasons (job ends other than delivered / ignored), grouped:")
        for reason, count in reasons.most_common(30):
            print(f"  {count:6}  {reason[:200]}")
    print(f"\n{doubles[0]}")
    for line in doubles[1:21]:
        print(f"  doubled: {line}")
    if orphans:
        print(f"\njob hashes left queued in no queue or registry: {len(orphans)} (e.g. {', '.join(orphans[:5])})")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__.split("\n")[0])
    parser.add_argument("--webhooks", type=int, default=10_000, help="logical webhooks (each sent 3 times)")
    parser.add_argument("--rate", type=float, default=25.0, help="logical webhooks started per second")
    parser.add_argument("--senders", type=int, default=8, help="sender threads")
    parser.add_argument(
        "--pool-workers", type=int, default=2, help="default `connector worker` processes (pools of simple workers)"
    )
    parser.add_argument("--pool-processes", type=int, default=2, help="worker processes per pool")
    parser.add_argument("--fork-workers", type=int, default=1)
    parser.add_argument("--simple-workers", type=int, default=0)
    parser.add_argument("--kill-every", type=float, default=4.0, help="seconds between worker SIGKILLs (0: none)")
    parser.add_argument(
        "--redis-kill", action=argparse.BooleanOptionalAction, default=True, help="SIGKILL Redis once and restart it"
    )
    parser.add_argument("--redis-at", type=float, default=0.5, help="when, as a share of the send phase")
    parser.add_argument("--redis-down", type=float, default=3.0, help="seconds Redis stays down")
    parser.add_argument("--error-rate", type=float, default=0.10, help="share of vendor calls answered 500")
    parser.add_argument("--drop-rate", type=float, default=0.02, help="share of creates stored whose answer is dropped")
    parser.add_argument("--burst-every", type=float, default=20.0, help="seconds between 429 bursts (0: none)")
    parser.add_argument(
        "--redeliver-within",
        type=float,
        default=15.0,
        help="the third delivery comes up to this many seconds after the first",
    )
    parser.add_argument(
        "--drop-at", default=",".join(CREATE_PATHS), help="comma-separated vendors whose creates get drop_after faults"
    )
    parser.add_argument(
        "--burst-at", default=",".join(DESTINATIONS), help="comma-separated vendors that get the 429 bursts"
    )
    parser.add_argument("--attempts", type=int, default=8, help="sender attempts per delivery")
    parser.add_argument("--retry-schedule", default="1,2,4,8,15", help="CONNECTOR_RETRY_SCHEDULE of the run")
    parser.add_argument("--drain-timeout", type=float, default=1800.0, help="longest drain, seconds")
    parser.add_argument(
        "--stall-timeout", type=float, default=90.0, help="end the drain when nothing moved for this long, seconds"
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--progress", type=float, default=10.0, help="seconds between progress lines")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, Redis data)")
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run; 0 when every target is met, 1 otherwise."""
    args = parse_args(argv)
    # SIGTERM, and SIGINT even when started in the background (where it would be ignored), stop
    # the run through the same clean-up as Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    rng = random.Random(args.seed)
    traffic = Traffic(args.webhooks, args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="faults-"))
    stack = Stack(
        workdir,
        "",
        fork_workers=args.fork_workers,
        simple_workers=args.simple_workers,
        pool_workers=args.pool_workers,
        pool_processes=args.pool_processes,
        retry_schedule=args.retry_schedule,
    )
    stack.tenants_toml = tenants_toml(stack.sandbox_url)
    families_count = Counter(w.family for w in traffic.webhooks)
    say(
        f"{args.webhooks} logical webhooks x 3 deliveries ({dict(families_count)}), {args.rate:g}/s, "
        f"{args.pool_workers} pools of {args.pool_processes} + {args.fork_workers} fork + {args.simple_workers} "
        f"simple workers; work directory {workdir}"
    )
    watch: RetryWatch | None = None
    faults: Faults | None = None
    failed = True
    try:
        stack.start()
        for collection, items in traffic.mews_seed.items():
            requests.post(f"{stack.sandbox_url}/mews/_sandbox/{collection}", json=items, timeout=60).raise_for_status()
        for vendor, reservations in traffic.reservation_seed.items():
            seeded = requests.post(f"{stack.sandbox_url}/{vendor}/_sandbox/reservations", json=reservations, timeout=60)
            seeded.raise_for_status()
        requests.post(
            f"{stack.sandbox_url}/voucherify/_sandbox/plan", json={"requests_per_minute": 10**9}, timeout=10
        ).raise_for_status()
        arm_sandboxes(stack, args)
        say(
            f"stack up: web {stack.web_url}, sandbox {stack.sandbox_url}, "
            f"Redis {stack.redis.local_url if stack.redis else '?'}"
        )
        sender = Sender(stack.web_url, args.attempts)
        watch = RetryWatch(stack.client())
        threading.Thread(target=watch.run, daemon=True).start()
        send_seconds = args.webhooks / args.rate
        faults = Faults(stack, args, rng, send_seconds)
        fault_thread = threading.Thread(target=faults.run, daemon=True)
        fault_thread.start()
        started = time.monotonic()
        sent = threading.Event()
        threading.Thread(
            target=print_progress,
            args=(stack, traffic.webhooks, sender, watch, sent, args.progress, started),
            daemon=True,
        ).start()
        send_all(stack, traffic.webhooks, args, rng, sender, sent)
        send_time = time.monotonic() - started
        faults.sending.clear()
        if faults.redis_at is not None:  # the send phase ended before the planned Redis kill
            faults.redis_at = None
            say("send phase too short for the Redis kill; none done")
        # The 500s and drop_after go on while the backlog drains (workers take ingest jobs first,
        # so many deliveries run only now), and worker kills until fewer than 50 jobs are left;
        # 429 bursts stop with the sending.
        say(f"sent in {send_time:.0f} s; draining (timeout {args.drain_timeout:.0f} s)")
        drained, drain_time = drain(stack, faults, args.drain_timeout, args.stall_timeout)
        faults.stop.set()
        fault_thread.join()
        for vendor in (*DESTINATIONS, *PMS):
            stack.disarm(vendor)
        watch.stop.set()
        try:
            watch.poll()
        except Exception:  # noqa: S110 - the last look is best effort
            pass
        total_time = time.monotonic() - started
        families, orphans, doubles = build_report(traffic.webhooks, stack.client(), stack.sandbox_url)
        print_report(families, orphans, doubles)
        total = families["total"]
        no_reason = sum(c for r, c in total.reasons.items() if r.startswith("failed: (no reason)"))
        print(
            f"\nsend phase {send_time:.0f} s (every delivery of {args.webhooks} logical webhooks answered), "
            f"drain {drain_time:.0f} s ({'complete' if drained else 'INCOMPLETE'}), "
            f"end to end {total.acknowledged / total_time:.1f} webhooks/s"
        )
        print(f"answers: {dict(sender.answers.most_common())}; deliveries given up by the sender: {sender.gave_up}")
        print(
            f"faults: {stack.worker_kills} worker SIGKILLs ({stack.horse_kills} with their horse, "
            f"{stack.pool_child_kills} of a pool's child), "
            f"{stack.redis_kills} Redis SIGKILL, {stack.unexpected_exits} workers exited by themselves"
        )
        print(
            f"retry lateness: worst enqueued {watch.worst_enqueue:.1f} s after due, worst still waiting "
            f"{watch.worst_overdue:.1f} s past due, worst started {watch.worst_start:.1f} s after due "
            f"(queueing included), {watch.measured} retries measured"
        )
        targets = {
            "0 lost or unfinished": total.outcomes["lost"] + total.outcomes["unfinished"] == 0,
            "0 doubled": total.doubled == 0,
            "every failure with a reason": no_reason == 0,
            "0 never-run": total.outcomes["never_run"] == 0 and not orphans,
            f"worst retry lateness < {LATENESS_TARGET:g} s": watch.worst < LATENESS_TARGET,
        }
        print("targets: " + "; ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in targets.items()))
        failed = not all(targets.values())
        return 1 if failed else 0
    except KeyboardInterrupt:
        say("interrupted; stopping everything")
        return 130
    finally:
        if watch is not None:
            watch.stop.set()
        if faults is not None:  # no more kills and replacements while the stack stops
            faults.stop.set()
            with faults.lock:
                stack.close()
        else:
            stack.close()
        if args.keep or failed:
            say(f"logs and Redis data kept in {workdir}")
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
