"""``python -m bench.profile`` (``make profile``): where a worker's time goes per webhook.

One ``connector worker --burst`` process (simple worker class by default) drains ``--webhooks``
accepted Shopify webhooks (intake → ingest job → delivery job → Glu sandbox) under
``py-spy record --format raw --idle --threads``: every sample of the main thread, waiting on a
socket included, so shares are shares of wall time. Each sampled stack is put in one category:

- the innermost frame of a known library decides (Redis client, HTTP client, pydantic, JSON,
  logging, ``os.fork``/``waitpid``, imports);
- Redis round trips are split by who made the call: the first caller outside ``redis`` is in
  ``rq`` (RQ's bookkeeping), in the connector's worker machinery (``connector/worker.py``,
  ``completion.py``, ``recovery.py``) or in the connector's jobs;
- HTTP is split into connection set-up (a frame on the stack that opens or closes a connection,
  creates a pool or a ``requests.Session``) and the request itself;
- otherwise the innermost frame of ``rq`` or ``connector`` makes it RQ's or the connector's own
  Python; anything else is "other".

Prints share of wall time and ms per webhook per category; ``--output FILE`` writes the same
summary to a file (``docs/profile-before.txt`` was made so). py-spy needs ptrace (root here).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.__main__ import glu_activities, signed_order
from bench.load import run_load
from bench.stack import ROOT, Stack, running_stack

# Category labels, in the order they are printed.
RQ_REDIS = "Redis round trips: RQ's bookkeeping"
WORKER_REDIS = "Redis round trips: connector worker machinery"
JOB_REDIS = "Redis round trips: connector jobs"
HTTP_SETUP = "HTTP connection set-up"
HTTP_REQUEST = "HTTP request (send, wait, read)"
PYDANTIC = "pydantic"
JSON = "JSON"
LOGGING = "logging"
FORK = "fork / wait for the horse"
IMPORTS = "imports, start-up"
RQ_PYTHON = "RQ's own Python"
CONNECTOR_PYTHON = "connector's own Python"
OTHER = "other"
CATEGORIES = (
    RQ_REDIS,
    WORKER_REDIS,
    JOB_REDIS,
    HTTP_SETUP,
    HTTP_REQUEST,
    PYDANTIC,
    JSON,
    LOGGING,
    FORK,
    IMPORTS,
    RQ_PYTHON,
    CONNECTOR_PYTHON,
    OTHER,
)
WORKER_MACHINERY = ("connector/worker.py", "connector/completion.py", "connector/recovery.py")
HTTP_FILES = ("/urllib3/", "/requests/", "http/client.py", "/socket.py", "/ssl.py")
# HTTP connection set-up: a new TCP connection, a new pool or client (a session per job), closing.
# py-spy names methods Class.method: matched on the method, or on the whole name for __init__s.
SETUP_METHODS = (
    "connect",
    "_new_conn",
    "create_connection",
    "connection_from_host",
    "connection_from_context",
    "connection_from_pool_key",
    "_new_pool",
    "init_poolmanager",
    "close",
    "_close_conn",
)
SETUP_CONSTRUCTORS = ("Session.__init__", "HTTPAdapter.__init__", "PoolManager.__init__", "HTTPConnectionPool.__init__")


@dataclass(frozen=True)
class Frame:
    """One frame of a py-spy raw stack: ``function (file:line)``."""

    function: str
    file: str

    @classmethod
    def parse(cls, text: str) -> Frame:
        """Read ``name (path/to/file.py:12)``; frames without a file keep the text as the name."""
        name, _, rest = text.partition(" (")
        return cls(name.strip(), rest.rsplit(":", 1)[0] if rest else "")

    def is_http_setup(self) -> bool:
        """Whether this frame sets up (or tears down) an HTTP connection, pool or client."""
        return self.function.rsplit(".", 1)[-1] in SETUP_METHODS or self.function in SETUP_CONSTRUCTORS

    def inside(self, *parts: str) -> bool:
        """Whether the frame's file path contains one of ``parts``."""
        # py-spy names files relative to their sys.path entry ("redis/client.py") or absolute
        path = "/" + self.file
        return any(part in path for part in parts)


def _library(frame: Frame) -> str | None:
    """The library category of one frame, or None for application or unknown frames."""
    if frame.inside("/redis/"):
        return "redis"
    if frame.inside(*HTTP_FILES):
        return "http"
    if frame.inside("/pydantic/", "/pydantic_core/"):
        return PYDANTIC
    if frame.inside("/json/", "/orjson"):
        return JSON
    if frame.inside("/logging/", "/structlog/"):
        return LOGGING
    if frame.function in ("fork", "waitpid", "wait4", "os.fork", "os.waitpid") or frame.inside("multiprocessing"):
        return FORK
    if frame.inside("importlib", "<frozen importlib"):
        return IMPORTS
    return None


def categorize(stack: list[Frame]) -> str:
    """The category of one sampled stack, outermost frame first."""
    for depth in range(len(stack) - 1, -1, -1):
        library = _library(stack[depth])
        if library is None:
            continue
        if library == "redis":
            return _redis_caller(stack[:depth])
        if library == "http":
            setup = any(f.inside(*HTTP_FILES) and f.is_http_setup() for f in stack)
            return HTTP_SETUP if setup else HTTP_REQUEST
        return library
    for frame in reversed(stack):
        if frame.inside("/rq/"):
            return RQ_PYTHON
        if frame.inside("connector/"):
            return CONNECTOR_PYTHON
    return OTHER


def _redis_caller(callers: list[Frame]) -> str:
    """Who made a Redis call: the innermost caller frame in RQ or the connector."""
    for frame in reversed(callers):
        if frame.inside("/redis/"):
            continue
        if frame.inside("/rq/"):
            return RQ_REDIS
        if frame.inside(*WORKER_MACHINERY):
            return WORKER_REDIS
        if frame.inside("connector/"):
            return JOB_REDIS
    return RQ_REDIS  # a call with no RQ or connector caller on the stack is RQ's loop


def read_raw(text: str) -> dict[str, Counter[str]]:
    """Samples per category per thread from py-spy's raw (collapsed) output.

    With ``--threads`` each stack starts with a ``thread (0x...)`` frame; without, all samples
    are one thread named "all".
    """
    threads: dict[str, Counter[str]] = {}
    thread_names: dict[str, str] = {}
    for line in text.splitlines():
        stack_text, _, count = line.rpartition(" ")
        if not stack_text or not count.isdigit():
            continue
        parts = stack_text.split(";")
        thread = "all"
        if parts and parts[0].startswith(("thread (", "process ")):
            # "thread (0x1f): MainThread" names the thread; a sample py-spy took while the
            # thread's name was unknown has "thread (0x1f)" only: both are the same thread
            thread = ";".join(p.split(":")[0] for p in parts if p.startswith(("thread (", "process ")))
            names = [p.partition(": ")[2] for p in parts if p.startswith("thread (") and ": " in p]
            if names:
                thread_names[thread] = names[0]
            parts = [p for p in parts if not p.startswith(("thread (", "process "))]
        frames = [Frame.parse(p) for p in parts]
        threads.setdefault(thread, Counter())[categorize(frames)] += int(count)
    return {f"{key} {thread_names.get(key, '')}".strip(): samples for key, samples in threads.items()}


def main_thread_samples(threads: dict[str, Counter[str]]) -> Counter[str]:
    """The main thread's samples (RQ's pubsub thread idles all along; it is not the worker's time)."""
    for name, samples in threads.items():
        if "MainThread" in name:
            return samples
    return max(threads.values(), key=lambda c: sum(c.values()))


def summarize(samples: Counter[str], wall_seconds: float, webhooks: int) -> list[str]:
    """The summary lines: share of wall time and ms per webhook for each category."""
    total = sum(samples.values()) or 1
    lines = [f"  {'category':<48} {'share':>6} {'ms/webhook':>11}"]
    redis = 0.0
    for category in CATEGORIES:
        share = samples.get(category, 0) / total
        if category in (RQ_REDIS, WORKER_REDIS, JOB_REDIS):
            redis += share
        lines.append(f"  {category:<48} {share:6.1%} {share * wall_seconds * 1000 / webhooks:11.2f}")
    lines.append(f"  {'(all Redis round trips)':<48} {redis:6.1%} {redis * wall_seconds * 1000 / webhooks:11.2f}")
    lines.append(f"  {'total':<48} {1:6.0%} {wall_seconds * 1000 / webhooks:11.2f}")
    return lines


def py_spy() -> str:
    """The py-spy next to this Python (dev dependency), else one on the PATH."""
    local = Path(sys.executable).parent / "py-spy"
    found = str(local) if local.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: make install (it is a dev dependency)")
    return found


def main() -> None:
    """Queue the webhooks, profile one worker draining them, print the summary."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--webhooks", type=int, default=1500)
    # simple only: under a fork worker the work is in a new horse per job, and the parent's
    # samples would only show it waiting
    parser.add_argument("--worker-class", choices=("simple",), default="simple")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--output", type=Path, help="also write the summary to this file")
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw output here")
    parser.add_argument(
        "--appendfsync", choices=("always", "everysec"), default="always", help="the Redis fsync policy"
    )
    args = parser.parse_args()
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    with running_stack(args.appendfsync) as stack:
        # the last commit that changed what is profiled (not the bench's own commits)
        commit = subprocess.run(
            ["git", "log", "-1", "--format=%h %s", "--", "connector", "config", "wsgi.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        load = Path("/proc/loadavg").read_text().split()[:3]
        say(f"profile of one `connector worker --burst --worker-class {args.worker_class}` process")
        say(f"connector code at {commit}")
        say(f"embedded Redis with AOF, appendfsync {args.appendfsync}, over its Unix socket; Glu sandbox on loopback")
        say(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average {' '.join(load)} before the run")
        worker = [sys.executable, "-m", "connector.cli", "worker", "--burst", "--worker-class", args.worker_class]
        # The same drain without the profiler first: the reference wall time per webhook.
        plain = drain(stack, args.webhooks, worker, 80_000_000)
        raw = args.raw or stack.tmp / "profile.raw"
        command = [py_spy(), "record", "--format", "raw", "--idle", "--threads", "--nonblocking"]
        command += ["--rate", str(args.rate), "--output", str(raw)]
        profiled = drain(stack, args.webhooks, [*command, "--", *worker], 90_000_000)
        threads = read_raw(raw.read_text())
    samples = main_thread_samples(threads)
    load = Path("/proc/loadavg").read_text().split()[:3]
    say(
        f"{args.webhooks} webhooks drained in {plain:.1f} s without the profiler "
        f"({plain * 1000 / args.webhooks:.2f} ms per webhook, start-up included), {profiled:.1f} s under py-spy "
        f"({profiled * 1000 / args.webhooks:.2f} ms); load average {' '.join(load)} after"
    )
    say(
        f"{sum(samples.values())} samples of the main thread at {args.rate}/s (--idle: waiting counts); "
        "ms/webhook = share x the unprofiled wall time"
    )
    for line in summarize(samples, plain, args.webhooks):
        say(line)
    if args.output:
        args.output.write_text("\n".join(lines) + "\n")


def drain(stack: Stack, webhooks: int, command: list[str], first_order: int) -> float:
    """Queue ``webhooks`` accepted Shopify webhooks, run ``command`` until it exits; its seconds."""
    print(f"[profile] queueing {webhooks} accepted Shopify webhooks through the intake...", flush=True)
    requests.post(f"http://127.0.0.1:{stack.sandbox}/glu/_sandbox/reset", timeout=10)
    payloads = [signed_order(first_order + i, i % 50, "127.0.0.1", stack.intake) for i in range(webhooks)]
    result = run_load("127.0.0.1", stack.intake, payloads, 4)
    if set(result.statuses) != {202}:
        raise SystemExit(f"intake answered {result.statuses}")
    print(f"[profile] draining: {' '.join(Path(c).name for c in command[:3])} ...", flush=True)
    started = time.perf_counter()
    subprocess.run(command, env=stack.env, cwd=ROOT, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    delivered = glu_activities(stack.sandbox)
    if delivered != webhooks:
        raise SystemExit(f"expected {webhooks} activities at the Glu sandbox, found {delivered}")
    return seconds


if __name__ == "__main__":
    main()
