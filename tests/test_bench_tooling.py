"""The bench's own measuring tools, cheaply: the round-trip counting hook, the Redis footprint,
the profile's categories and the summary's verdicts (CI does not run the benchmarks themselves)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

from redis import Redis

from bench import profile
from bench.cpu import CpuMeter, CpuSplit, process_cpu, tree_cpu
from bench.footprint import children, family, measure, rss_mb
from bench.roundtrips import counting_env, read_counts, report
from bench.summary import Row, Summary
from connector.sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parent.parent

# Run under the counting hook: 3 single commands, one pipeline of 5, one RQ job (of a known
# function) performed by a SimpleWorker in this process, 2 HTTP requests on one keep-alive
# session to the sandbox.
COUNTED = textwrap.dedent(
    """
    import sys
    import requests
    from redis import Redis
    from rq import Queue, SimpleWorker
    from rq.serializers import JSONSerializer

    redis = Redis.from_url(sys.argv[1])
    redis.set("a", 1)
    redis.get("a")
    redis.delete("a")
    with redis.pipeline() as pipe:
        for i in range(5):
            pipe.set(f"p{i}", i)
        pipe.execute()
    queue = Queue("counted", connection=redis, serializer=JSONSerializer)
    queue.enqueue("bench.noop.noop")
    SimpleWorker([queue], connection=redis, serializer=JSONSerializer).work(burst=True)
    session = requests.Session()
    for _ in range(2):
        session.get(sys.argv[2] + "/", timeout=10)
    """
)


def run_counted(directory: Path, redis_url: str, url: str, script: str = COUNTED) -> dict[str, dict[str, int]]:
    """Run ``script`` under the counting hook; its one process's counts."""
    counts = directory / "counts"
    counts.mkdir(parents=True)
    (directory / "counted.py").write_text(script)
    env = counting_env({"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}, counts)
    subprocess.run([sys.executable, str(directory / "counted.py"), redis_url, url], env=env, check=True, timeout=120)
    files = list(counts.glob("*.json"))
    assert len(files) == 1, files
    record: dict[str, dict[str, int]] = json.loads(files[0].read_text())
    return record


def test_the_counting_hook_counts_round_trips_by_what_the_process_was_doing(
    tmp_path: Path, redis: Redis, redis_url: str, sandbox_server: SandboxServer
) -> None:
    record = run_counted(tmp_path, redis_url, sandbox_server.url)
    # before the worker: 3 commands + 1 pipeline + RQ's enqueue (exact counts: the next test)
    assert record["redis"]["web"] >= 4, record["redis"]
    # the job ran as "noop" (RQ's calls inside Job.perform count as the job's); RQ's calls after it
    # are its bookkeeping; the worker's registration before it is start-up
    assert set(record["redis"]) == {"web", "start-up", "noop", "noop (bookkeeping)"}, record["redis"]
    assert record["redis"]["start-up"] > record["redis"]["noop"]
    assert record["http"] == {"noop (bookkeeping)": 2}
    assert 1 <= sum(record["connections"].values()) <= 2  # 1 when the sandbox keeps the connection open


def test_a_pipeline_is_one_round_trip(
    tmp_path: Path, redis: Redis, redis_url: str, sandbox_server: SandboxServer
) -> None:
    five = run_counted(tmp_path / "five", redis_url, sandbox_server.url)
    redis.flushdb()
    fifty = run_counted(tmp_path / "fifty", redis_url, sandbox_server.url, COUNTED.replace("range(5)", "range(50)"))
    assert fifty["redis"]["web"] == five["redis"]["web"]  # 50 commands in the pipeline cost what 5 did
    more_singles = COUNTED.replace('redis.get("a")', 'redis.get("a")\nredis.get("b")')
    redis.flushdb()
    assert run_counted(tmp_path / "six", redis_url, sandbox_server.url, more_singles)["redis"]["web"] == (
        five["redis"]["web"] + 1
    )


def test_counts_are_read_back_and_reported_per_webhook(tmp_path: Path) -> None:
    for pid, record in {
        1: {"redis": {"webhook shopify": 20, "web": 7, "request /healthz": 3}},
        2: {"redis": {"ingest": 30, "ingest (bookkeeping)": 50, "deliver": 40, "deliver (bookkeeping)": 60}},
        3: {"redis": {"start-up": 10}, "http": {"deliver": 20}, "connections": {"deliver": 10}},
    }.items():
        (tmp_path / f"{pid}.json").write_text(json.dumps(record))
    counts = read_counts(tmp_path)
    assert counts.processes == 3
    assert counts.job("redis", "ingest") == (30, 50)
    lines: list[str] = []
    summary = Summary()
    report(counts, webhooks=10, activities=10, summary=summary, say=lines.append)
    text = "\n".join(lines)
    # end to end: the web's idle and probe calls are left out: (20 + 180 + 10) / 10
    assert "end to end: 21.0" in text
    assert "intake (POST /webhooks/.../shopify)          2.0" in text
    assert "HTTP requests per activity: 2.00" in text
    assert [row.figure for row in summary.rows] == ["Redis round trips per webhook", "HTTP requests per activity"]
    assert summary.rows[0].value == 21.0 and summary.rows[0].passed


def test_the_footprint_sums_memory_usage_by_key_family(redis: Redis) -> None:
    before = measure(redis)
    for i in range(20):
        redis.set(f"bench:big:{i}", "x" * 1000)
    redis.hset("bench:small:1", mapping={"a": "1"})
    after = measure(redis).minus(before)
    assert after.keys == 21
    assert after.families["bench:big"] >= 20 * 1000
    assert 0 < after.families["bench:small"] < 1000
    assert after.total == after.families["bench:big"] + after.families["bench:small"]
    assert family(b"rq:job:abc") == "rq:job"


def test_process_memory_is_read_from_proc() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(40 * 2**20); time.sleep(30)"])
    try:
        for _ in range(100):
            if rss_mb(child.pid) > 40:
                break
            subprocess.run(["sleep", "0.05"], check=True)
        assert rss_mb(child.pid) > 40
        import os

        assert child.pid in children(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert rss_mb(child.pid) == 0.0


BURN = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n{then}"


def test_the_cpu_split_counts_a_server_tree_its_redis_and_the_ended_load_generator() -> None:
    """A "server" whose child burns 0.4 s of CPU, a "Redis" that burns 0.2 s and a "load
    generator" child that burns 0.3 s and ends: each group is credited with its own seconds."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.run([sys.executable, '-c', {BURN!r}.format("
            "seconds=0.4, then='import time; time.sleep(30)')])",
        ]
    )
    redis = subprocess.Popen([sys.executable, "-c", BURN.format(seconds=0.2, then="import time; time.sleep(30)")])
    try:
        with CpuMeter.for_server(server.pid, redis.pid) as meter:
            subprocess.run([sys.executable, "-c", BURN.format(seconds=0.3, then="")], check=True)
            for _ in range(200):  # until the server's child and the Redis have burnt their share
                if tree_cpu(server.pid) >= 0.4 and process_cpu(redis.pid) >= 0.2:
                    break
                subprocess.run(["sleep", "0.05"], check=True)
        assert 0.35 <= meter.spent["gunicorn"] < 1.0, meter.spent
        assert 0.15 <= meter.spent["Redis"] < 0.6, meter.spent
        assert 0.25 <= meter.spent["load generator"] < 0.9, meter.spent
    finally:
        for process in (server, redis):
            for child in children(process.pid):
                os.kill(child, 9)
            process.kill()
            process.wait()
    split = CpuSplit()
    split.add(1000, {"gunicorn": 0.6, "Redis": 0.1})
    split.add(1000, {"gunicorn": 0.4, "load generator": 0.2})
    assert split.per_request_us("gunicorn") == 500 and split.per_request_us("Redis") == 50
    assert split.total_us() == 650


def stack_of(*frames: tuple[str, str]) -> list[profile.Frame]:
    return [profile.Frame(function, file) for function, file in frames]


WORK = (("BaseWorker.work", "rq/worker/base.py"), ("perform_job", "rq/worker/base.py"))
REDIS_CALL = (("Redis.execute_command", "redis/client.py"), ("read_response", "redis/connection.py"))


def test_the_profile_puts_each_stack_in_one_category() -> None:
    in_job = (("deliver", "connector/jobs.py"),)
    assert profile.categorize(stack_of(*WORK, *REDIS_CALL)) == profile.RQ_REDIS
    assert profile.categorize(stack_of(*WORK, *in_job, *REDIS_CALL)) == profile.JOB_REDIS
    assert profile.categorize(stack_of(*WORK, ("settle", "connector/worker.py"), *REDIS_CALL)) == profile.WORKER_REDIS
    http = (("Session.send", "requests/sessions.py"), ("getresponse", "http/client.py"))
    assert profile.categorize(stack_of(*WORK, *in_job, *http)) == profile.HTTP_REQUEST
    setup = (("Session.send", "requests/sessions.py"), ("HTTPConnection.connect", "urllib3/connection.py"))
    assert profile.categorize(stack_of(*WORK, *in_job, *setup)) == profile.HTTP_SETUP
    new_client = (("HttpClient.__init__", "connector/http.py"), ("Session.__init__", "requests/sessions.py"))
    assert profile.categorize(stack_of(*WORK, *in_job, *new_client)) == profile.HTTP_SETUP
    assert profile.categorize(stack_of(*WORK, ("validate", "pydantic/main.py"))) == profile.PYDANTIC
    assert profile.categorize(stack_of(*WORK, ("Logger.info", "logging/__init__.py"))) == profile.LOGGING
    assert profile.categorize(stack_of(*WORK)) == profile.RQ_PYTHON
    assert profile.categorize(stack_of(*WORK, *in_job)) == profile.CONNECTOR_PYTHON


def test_the_profile_reads_py_spy_raw_output_per_thread() -> None:
    main = "thread (0x1): MainThread;work (rq/worker/base.py:1);read_response (redis/connection.py:2)"
    idle = "thread (0x2): Thread-1;get_message (redis/client.py:3)"
    raw = f"{main} 30\nthread (0x1);work (rq/worker/base.py:1) 10\n{idle} 99\n"
    threads = profile.read_raw(raw)
    samples = profile.main_thread_samples(threads)
    assert samples == Counter({profile.RQ_REDIS: 30, profile.RQ_PYTHON: 10})
    lines = profile.summarize(samples, wall_seconds=4.0, webhooks=100)
    assert any(line.strip().startswith(profile.RQ_REDIS) and "75.0%" in line and "30.00" in line for line in lines)


def test_the_summary_judges_values_and_ratios() -> None:
    summary = Summary()
    summary.add(Row("kept", 2000, "B", 3072, at_least=False))
    summary.add(Row("rate", 50, "webhooks/s", 0.7, at_least=True, anchor="100 jobs/s", ratio=0.5))
    assert [row.passed for row in summary.rows] == [True, False]
    table = summary.table()
    assert "PASS" in table[2] and "MISS" in table[3] and "0.50x" in table[3]
    assert table[-1].strip() == "1 PASS, 1 MISS"


def test_the_http_row_is_judged_against_glus_least_calls(tmp_path: Path) -> None:
    # 200 activities from 50 guests: a post each, a look-up and a create per new contact = 1.5
    (tmp_path / "1.json").write_text(json.dumps({"redis": {"ingest": 1}, "http": {"ingest": 300}}))
    summary = Summary()
    report(read_counts(tmp_path), webhooks=200, activities=200, summary=summary, say=lambda _: None)
    http = summary.rows[1]
    assert http.value == 1.5 and http.target == 1.5 and http.passed
    (tmp_path / "1.json").write_text(json.dumps({"redis": {"ingest": 1}, "http": {"ingest": 320}}))
    summary = Summary()
    report(read_counts(tmp_path), webhooks=200, activities=200, summary=summary, say=lambda _: None)
    assert not summary.rows[1].passed  # 20 calls more than the contract needs


def test_the_paced_sender_times_answers_and_counts_silence_and_refusals_as_unanswered() -> None:
    """The selector-driven sender: answered requests timed, a silent one expires, a refused one fails."""
    import socket
    import threading
    import time

    from bench.load import raw_request
    from bench.slow import send_paced

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held: list[socket.socket] = []

    def serve(conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        if b" /ok " in head:
            time.sleep(0.02)
            conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            conn.close()
        else:
            held.append(conn)  # never answered

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    ok = raw_request("127.0.0.1", port, "/ok", {}, b"{}")
    silent = raw_request("127.0.0.1", port, "/silent", {}, b"{}")
    try:
        result = send_paced("127.0.0.1", port, [ok, ok, silent, ok, ok, silent, ok, ok], rate=50, deadline=0.5)
    finally:
        listener.close()
        for conn in held:
            conn.close()
    assert result.sent == 8
    assert result.statuses == {202: 6, 0: 2}
    assert len(result.latencies) == 6 and all(0.02 <= latency < 0.5 for latency in result.latencies)
    assert 20 <= result.p(0.5) < 500 and result.p(0.99) == float("inf")
    assert result.behind < 0.2

    closed = socket.create_server(("127.0.0.1", 0))
    refused_port = closed.getsockname()[1]
    closed.close()
    refused = send_paced("127.0.0.1", refused_port, [ok, ok], rate=100, deadline=0.5)
    assert refused.statuses == {0: 2} and refused.latencies == []


BOTH_AT_ONCE = """
import sys, time
from pathlib import Path
me, other = sys.argv[1], sys.argv[2]
sys.stderr.write("a log line of a busy worker\\n" * 20_000)  # 560 KB, far past a pipe's buffer
sys.stderr.flush()
Path(me).touch()
deadline = time.monotonic() + 20
while not Path(other).exists():
    if time.monotonic() > deadline:
        sys.exit(3)  # the other one never got this far while this one ran
    time.sleep(0.01)
"""


def test_burst_runs_its_processes_at_once_however_much_they_log(tmp_path: Path) -> None:
    """Two processes that log a lot and each wait for the other both finish: through pipes read
    one after the other, the second blocked on its full pipe until the first had exited."""
    from bench.workers import burst

    script = tmp_path / "both.py"
    script.write_text(BOTH_AT_ONCE)
    first, second = tmp_path / "first", tmp_path / "second"
    # One argv for both: each waits for the file the other one touches.
    marker = tmp_path / "which"
    code = (
        "import os, sys, runpy; from pathlib import Path\n"
        f"m = Path({str(marker)!r})\n"
        "try:\n    os.close(os.open(m, os.O_CREAT | os.O_EXCL)); mine = 'first'\n"
        "except FileExistsError:\n    mine = 'second'\n"
        f"sys.argv = ['both', os.path.join({str(tmp_path)!r}, mine), "
        f"os.path.join({str(tmp_path)!r}, 'second' if mine == 'first' else 'first')]\n"
        f"runpy.run_path({str(script)!r})\n"
    )
    burst([sys.executable, "-c", code], dict(os.environ), 2)
    assert first.exists() and second.exists()


def test_a_completion_rate_counts_the_intervals_between_first_and_last() -> None:
    from datetime import datetime, timedelta

    from bench.workers import completion_rate

    start = datetime(2026, 12, 2, 12, 0, 0)
    times = [start + timedelta(milliseconds=10 * i) for i in range(101)]  # 100 intervals in 1 s
    assert abs(completion_rate(times[::-1]) - 100.0) < 1e-6
