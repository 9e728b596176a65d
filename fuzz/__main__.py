"""``make fuzz``: malformed input over every source against gunicorn with real workers draining.

Per source, mutated but correctly signed requests (the real fixtures with values replaced by other
JSON types, deep nesting, lone surrogates, huge numbers, missing keys) and unsigned garbage are
sent to the app under gunicorn (``config/gunicorn.conf.py``, a free port) while ``connector worker``
processes drain the queues against the sandboxes; then every failed job is classified by its
reason. Targets: no 5xx, no job failed with anything but a connector error (``PayloadError``, a
destination error), i.e. no unclassified Python exception.

``python -m fuzz [--requests N] [--seconds S] [--workers W] [--concurrency C] [--seed K]``:
N requests in all (default 12000, spread over the 13 sources), within S seconds of sending
(default 180) plus the drain (at most S more). Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from connector.embedded_redis import EmbeddedRedis, free_port
from connector.queue import QUEUE_NAMES, connect, fetch_job, get_queue
from connector.sandbox.server import SandboxServer
from fuzz import mutate, targets

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def build_request(rng: random.Random, source: str, n: int) -> tuple[str, str, bytes, dict[str, str]]:
    """``(kind, path, body, headers)``: mostly mutated and signed, sometimes unsigned garbage."""
    if rng.random() < 0.2:
        body = mutate.garbage(rng) if rng.random() < 0.5 else mutate.dumps(_mutated(rng, source))
        path, headers = targets.unsigned(source, n)
        return "unsigned", path, body, headers
    path, headers, body = targets.signed(source, mutate.dumps(_mutated(rng, source)), n)
    return "signed", path, body, headers


def _mutated(rng: random.Random, source: str) -> object:
    base = targets.fixture(source, rng.choice(targets.WEBHOOK_FIXTURES[source]))
    return mutate.apply_all(base, mutate.random_mutations(rng, base, rng.randint(1, 3)))


def wait_http(url: str, timeout: float = 30.0) -> None:
    """Until ``url`` answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def pending(redis: object) -> int:
    """Jobs not yet finished or failed, over every queue."""
    total = 0
    for name in QUEUE_NAMES:
        queue = get_queue(redis, name)  # type: ignore[arg-type]
        total += queue.count + StartedJobRegistry(queue=queue).count + ScheduledJobRegistry(queue=queue).count
    return total


def job_states(redis: object) -> Counter[str]:
    """Every job hash in Redis by ``<kind> <status>`` (kind: the job id's prefix, e.g. ``ingest``)."""
    states: Counter[str] = Counter()
    for key in redis.scan_iter(match="rq:job:*", count=1000):  # type: ignore[attr-defined]
        name = key.decode()
        if name.count(":") != 2:
            continue  # rq:job:<id>:dependents and the like
        status = redis.hget(key, "status")  # type: ignore[attr-defined]
        states[f"{name.split(':')[2].split('-')[0]} {status.decode() if status else '?'}"] += 1
    return states


def classify(redis: object) -> tuple[Counter[str], Counter[str], list[str]]:
    """Finished jobs per queue, failed jobs per class, and examples of unclassified failures."""
    finished: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    examples: list[str] = []
    for name in QUEUE_NAMES:
        queue = get_queue(redis, name)  # type: ignore[arg-type]
        finished[name] = FinishedJobRegistry(queue=queue).count
        for job_id in FailedJobRegistry(queue=queue).get_job_ids():
            result = fetch_job(redis, job_id).latest_result()  # type: ignore[arg-type]
            lines = ((result.exc_string if result else "") or "").strip().splitlines()
            last = lines[-1] if lines else "(no reason)"
            exception = last.split(":", 1)[0]
            if exception.startswith("connector.errors."):
                failed[f"{name}: {exception.removeprefix('connector.errors.')}"] += 1
            else:
                failed[f"{name}: UNCLASSIFIED {exception}"] += 1
                if len(examples) < 10:
                    examples.append(f"{job_id}: {last[:300]}")
    return finished, failed, examples


def main(argv: list[str] | None = None) -> int:
    """Run the fuzz (see the module docstring); the exit status says whether the targets held."""
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=12000, help="requests in all (default 12000)")
    parser.add_argument("--seconds", type=float, default=180.0, help="sending budget; the drain gets as much")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the sandbox's request log
    tmp = Path(tempfile.mkdtemp(prefix="connector-fuzz-"))
    redis_server = EmbeddedRedis(tmp / "redis", appendonly=False).start()
    sandbox = SandboxServer().start()
    tenants = tmp / "tenants.toml"
    tenants.write_text(targets.tenants_toml(sandbox.url), encoding="utf-8")
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_server.url,
        "CONNECTOR_TENANTS_FILE": str(tenants),
        "CONNECTOR_RETRY_SCHEDULE": "1,2",  # retriable failures settle inside the run
        # Finished jobs are kept for the run, so that every accepted webhook's job is found and
        # classified: by default (issue 16) a finished job is deleted, and this run counted
        # 1,886 accepted webhooks as lost for it.
        "CONNECTOR_FINISHED_JOB_RETENTION": "3600",
        "CONNECTOR_BIND": f"127.0.0.1:{port}",
        "CONNECTOR_ADMIN_PASSWORD": "",
        "WEB_CONCURRENCY": "2",
    }
    logs = (tmp / "web.log").open("wb"), (tmp / "workers.log").open("wb")
    procs = [
        subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=logs[0],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ]
    procs += [
        subprocess.Popen(
            [str(BIN / "connector"), "worker"],
            cwd=ROOT,
            env=env,
            stdout=logs[1],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for _ in range(args.workers)
    ]
    base = f"http://127.0.0.1:{port}"
    statuses: dict[str, Counter[str]] = defaultdict(Counter)
    lock = threading.Lock()
    sent = [0]
    accepted: dict[str, str] = {}  # job id of every 202 -> source
    try:
        wait_http(base + "/readyz")
        rng = random.Random(args.seed)
        plan = [build_request(rng, targets.SOURCES[i % len(targets.SOURCES)], i) for i in range(args.requests)]
        sources = [targets.SOURCES[i % len(targets.SOURCES)] for i in range(args.requests)]
        local = threading.local()
        stop_at = time.monotonic() + args.seconds

        def send(index: int) -> None:
            if time.monotonic() > stop_at:
                return
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            kind, path, body, headers = plan[index]
            job = None
            try:
                response = session.post(base + path, data=body, headers=headers, timeout=30)
                status = str(response.status_code)
                if response.status_code == 202:
                    job = response.json().get("job")
            except requests.RequestException as exc:
                status = f"error {type(exc).__name__}"
            with lock:
                if job:
                    accepted[job] = sources[index]
                statuses[sources[index]][f"{kind} {status}"] += 1
                sent[0] += 1

        print(
            f"fuzz: {args.requests} requests over {len(targets.SOURCES)} sources, gunicorn on {base}, "
            f"{args.workers} workers (logs in {tmp})",
            flush=True,
        )
        started = time.monotonic()
        with ThreadPoolExecutor(args.concurrency) as pool:
            futures = [pool.submit(send, i) for i in range(args.requests)]
            while not all(f.done() for f in futures):
                time.sleep(5)
                with lock:
                    fives = sum(c for s in statuses.values() for k, c in s.items() if k.split()[-1].startswith("5"))
                print(
                    f"  sent {sent[0]}/{args.requests} in {time.monotonic() - started:.0f}s, 5xx so far {fives}, "
                    f"jobs pending {pending(connect(redis_server.url))}",
                    flush=True,
                )
        redis = connect(redis_server.url)
        drain_until = time.monotonic() + args.seconds
        while (left := pending(redis)) and time.monotonic() < drain_until:
            print(f"  draining: {left} jobs pending", flush=True)
            time.sleep(3)
        finished, failed, examples = classify(redis)
        states = job_states(redis)
        unknown = [(job, source) for job, source in accepted.items() if not redis.exists(f"rq:job:{job}")]
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        sandbox.stop()
        redis_server.stop()

    print(f"\nstatus codes per source ({sent[0]} requests in {time.monotonic() - started:.0f}s):")
    for source in targets.SOURCES:
        line = ", ".join(f"{k}: {v}" for k, v in sorted(statuses[source].items()))
        print(f"  {source:14} {line}")
    total = Counter[str]()
    for per_source in statuses.values():
        for key, value in per_source.items():
            total[key.split(" ", 1)[1]] += value
    print(f"  {'all':14} " + ", ".join(f"{k}: {v}" for k, v in sorted(total.items())))
    print("jobs finished: " + ", ".join(f"{k} {v}" for k, v in sorted(finished.items())) + f"; still pending {left}")
    print("job hashes:    " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
    erased = [job for job, source in unknown if source == "socialwifi" and states.get("erase finished")]
    print(
        f"accepted (202) {len(accepted)}; job hash gone: {len(erased)} erased on purpose (a Social WiFi Delete "
        f"erases the stored jobs naming its guest), {len(unknown) - len(erased)} otherwise"
    )
    print("jobs failed:   " + (", ".join(f"{k} {v}" for k, v in sorted(failed.items())) or "none"))
    for line in examples:
        print(f"  unclassified: {line}")
    tracebacks = (tmp / "web.log").read_text(errors="replace").count("Traceback")
    print(f"tracebacks in the web log: {tracebacks}")
    five = sum(v for k, v in total.items() if k.startswith("5") or k.startswith("error"))
    unclassified = sum(v for k, v in failed.items() if "UNCLASSIFIED" in k)
    print(f"\n5xx or transport errors: {five}   unclassified job failures: {unclassified}   (targets: 0 and 0)")
    lost = len(unknown) - len(erased)
    return 0 if five == 0 and unclassified == 0 and left == 0 and tracebacks == 0 and lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
