"""Workers lose no accepted job, ride out Redis outages and start due retries on time.

Real ``connector worker`` processes, real SIGKILLs, a dedicated embedded Redis stopped and
started on its port where an outage is needed (never the session's server).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import load_fixture, shopify_headers
from redis import Redis
from rq import Retry

from connector.embedded_redis import EmbeddedRedis
from connector.queue import DELIVERY_QUEUE, INGEST_QUEUE, connect, fetch_job, get_queue
from connector.recovery import WORKER_DEATH_LIMIT
from connector.web import create_app

FAULTS = Path(__file__).parent / "worker_faults.py"
ORDER = load_fixture("shopify", "orders_paid")
LATENESS_LIMIT = 5.0  # issue 11: a due retry starts within 5 s of its time


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def one_process(options: tuple[str, ...]) -> tuple[str, ...]:
    """Worker options for a single worker process unless they name ``--processes``."""
    return options if "--processes" in options else ("--processes", "1", *options)


class Workers:
    """Worker processes started by a test (each in its own session), killed at the end."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *argv: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(argv, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def worker(self, *options: str) -> subprocess.Popen[bytes]:
        """``connector worker``: one process unless the options say otherwise (the default is a pool)."""
        return self.start(sys.executable, "-m", "connector.cli", "worker", *one_process(options))

    def faulty(self, mode: str, markers: Path, *options: str) -> subprocess.Popen[bytes]:
        return self.start(sys.executable, str(FAULTS), mode, str(markers), *one_process(options))

    def kill_group(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and everything in its process group (its scheduler; horses have their own)."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def log(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in sorted(self.logs.glob("worker-*.log")))

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    logs = tmp_path / "logs"
    logs.mkdir()
    running = Workers(logs)
    yield running
    running.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own (append-only file on, as in production), free to stop and start."""
    server = EmbeddedRedis(tmp_path / "own-redis", appendonly=True).start()
    yield server
    server.stop()


def post_order(client: Any, webhook_id: str, order_id: int = 6200407294252) -> int:
    """The fixture order (under another order id when given: a separate activity)."""
    body = ORDER.replace(b'{"id":6200407294252,', b'{"id":%d,' % order_id, 1)
    headers = shopify_headers(body, webhook_id=webhook_id)
    return int(client.post("/webhooks/harbour/shopify", data=body, headers=headers).status_code)


def activities(sandbox: Any) -> list[dict[str, Any]]:
    return list(sandbox.sandboxes.glu.state()["activities"])


def registered_worker_pids(redis: Redis) -> set[int]:
    pids = set()
    for key in redis.smembers("rq:workers"):
        pid = redis.hget(key, "pid")
        if pid and not redis.hexists(key, "death"):
            pids.add(int(pid))
    return pids


def worker_name_of(redis: Redis, pid: int) -> str | None:
    """The RQ name of the live worker with this pid."""
    for key in redis.smembers("rq:workers"):
        if redis.hget(key, "pid") == str(pid).encode() and not redis.hexists(key, "death"):
            return key.decode().removeprefix("rq:worker:")
    return None


def scheduler_owner(redis: Redis) -> str | None:
    """The running scheduler that holds the delivery queue's lock (where retries wait)."""
    owner = redis.get("rq:scheduler-lock:delivery")
    return owner.decode() if owner and redis.exists(b"rq:scheduler:" + owner) else None


def schedule_probe(redis: Redis, seconds: float) -> tuple[str, datetime]:
    """A scheduled job on the delivery queue (where retries wait), due in ``seconds``."""
    due = datetime.now(UTC) + timedelta(seconds=seconds)
    job = get_queue(redis, DELIVERY_QUEUE).enqueue_at(due, "time.time")
    return job.id, due


def lateness(redis: Redis, job_id: str, due: datetime) -> float:
    """Seconds between a probe's due time and its start, once it has finished."""
    wait_for(lambda: fetch_job(redis, job_id).get_status() == "finished", 15 + LATENESS_LIMIT, "the probe to run")
    started = fetch_job(redis, job_id).started_at
    assert started is not None
    return (started.replace(tzinfo=UTC) - due).total_seconds()


# --- item 2: the window between taking a job off its queue and starting it -----------------------


def test_a_worker_killed_right_after_taking_a_job_loses_it_to_no_one(client, sandbox, redis, work, workers, tmp_path):
    assert post_order(client, "killed-after-pop") == 202
    proc = workers.faulty("kill-after-pop", tmp_path)
    assert proc.wait(timeout=30) == -signal.SIGKILL, workers.log()
    job_id = (tmp_path / "popped").read_text()
    assert get_queue(redis, INGEST_QUEUE).count == 0  # taken off the queue, never started
    work()  # the next worker, as after a restart
    assert fetch_job(redis, job_id).get_status() == "finished"
    assert len(activities(sandbox)) == 1


def test_a_live_worker_recovers_the_job_of_one_sigkilled_between_pop_and_start(
    client, sandbox, redis, workers, tmp_path
):
    assert post_order(client, "sigkilled-in-the-window") == 202
    doomed = workers.faulty("wait-after-pop", tmp_path)
    wait_for(lambda: (tmp_path / "popped").exists(), 30, "the faulty worker to take the job")
    live = workers.worker()
    wait_for(lambda: live.pid in registered_worker_pids(redis), 30, "the live worker to start")
    workers.kill_group(doomed)  # SIGKILL in the window, with another worker already running
    wait_for(lambda: activities(sandbox), 20, f"the job to be delivered\n{workers.log()}")
    job_id = (tmp_path / "popped").read_text()
    wait_for(lambda: fetch_job(redis, job_id).get_status() == "finished", 10, "the ingest job to finish")
    assert len(activities(sandbox)) == 1


def test_a_redis_restart_between_pop_and_start_loses_no_job(env, sandbox, own_redis, workers, tmp_path):
    settings = env(REDIS_URL=own_redis.url)
    client = create_app(settings).test_client()
    redis = connect(own_redis.url)
    assert post_order(client, "redis-restarted-in-the-window") == 202
    workers.faulty("wait-after-pop", tmp_path)
    wait_for(lambda: (tmp_path / "popped").exists(), 30, "the worker to take the job")
    own_redis.stop()
    (tmp_path / "go").touch()  # the worker reads the job while Redis is down...
    wait_for(lambda: (tmp_path / "read-failed").exists(), 30, "the worker's read to fail")
    own_redis.start()  # ...and Redis comes back with the job in no queue and not started
    wait_for(lambda: activities(sandbox), 20, f"the job to be delivered\n{workers.log()}")
    job_id = (tmp_path / "popped").read_text()
    wait_for(lambda: fetch_job(redis, job_id).get_status() == "finished", 10, "the ingest job to finish")
    assert len(activities(sandbox)) == 1


# --- item 3: due retries start on time across worker kills ------------------------------------


def test_a_new_worker_takes_over_the_scheduler_lock_left_by_a_stack_killed_hard(env, own_redis, workers):
    env(REDIS_URL=own_redis.url)
    redis = connect(own_redis.url)
    first = workers.worker()
    owner = wait_for(lambda: scheduler_owner(redis), 30, "the first worker's scheduler to take the lock")
    workers.kill_group(first)  # the worker and its scheduler, as a hard stop of the stack...
    own_redis.stop()  # ...with Redis, whose append-only file keeps the lock (61 s TTL)
    own_redis.start()
    assert redis.get("rq:scheduler-lock:delivery") == owner.encode()
    second = workers.worker()
    wait_for(lambda: second.pid in registered_worker_pids(redis), 30, "the new worker to start")
    job_id, due = schedule_probe(redis, 1.5)
    assert lateness(redis, job_id, due) <= LATENESS_LIMIT, workers.log()


def test_a_running_worker_takes_over_when_the_scheduler_holder_is_sigkilled_alone(env, redis, workers):
    env()
    first = workers.worker()
    owner = wait_for(lambda: scheduler_owner(redis), 30, "the first worker's scheduler to take the lock")
    second = workers.worker()
    wait_for(lambda: second.pid in registered_worker_pids(redis), 30, "the second worker to start")
    job_id, due = schedule_probe(redis, 2.0)
    os.kill(first.pid, signal.SIGKILL)  # only the worker: its scheduler process is orphaned and must stop
    first.wait()
    assert lateness(redis, job_id, due) <= LATENESS_LIMIT, workers.log()
    assert scheduler_owner(redis) not in (None, owner)  # the running worker's scheduler took over


@pytest.mark.parametrize("worker_class", ["simple", "fork"])
def test_a_worker_sigkilled_while_waiting_for_a_job_takes_no_later_job_with_it(worker_class, env, redis, workers):
    """Its scheduler process outlives it for a moment, and held a copy of the socket on which the
    worker waited in BLMOVE: Redis kept the wait and moved the next job into the dead worker's
    claim list, after recovery had handed that list back (the fault suite's "never run" job)."""
    env()
    proc = workers.worker("--worker-class", worker_class)
    wait_for(lambda: scheduler_owner(redis), 30, "the worker's scheduler to take the lock")
    name = wait_for(lambda: worker_name_of(redis, proc.pid), 30, "the worker to register")
    wait_for(lambda: (redis.hget(f"rq:worker:{name}", "state") or b"") == b"idle", 30, "the worker to wait for a job")
    time.sleep(0.3)  # in BLMOVE by now (it blocks on the ingest queue a second at a time)
    os.kill(proc.pid, signal.SIGKILL)  # the worker alone: its scheduler process lives on for a moment
    proc.wait()
    time.sleep(0.2)
    job = get_queue(redis, INGEST_QUEUE).enqueue("os.getpid")
    time.sleep(0.5)
    assert redis.lrange(f"connector:claimed:{name}", 0, -1) == []
    assert job.id.encode() in redis.lrange(f"rq:queue:{INGEST_QUEUE}", 0, -1)


# --- items 3 and 4: a Redis outage while a worker runs ----------------------------------------


@pytest.mark.parametrize("worker_class", ["fork", "simple"])
def test_a_worker_rides_out_a_redis_outage_mid_job(worker_class, env, sandbox, own_redis, workers):
    settings = env(REDIS_URL=own_redis.url)
    client = create_app(settings).test_client()
    redis = connect(own_redis.url)
    proc = workers.worker("--worker-class", worker_class)
    wait_for(lambda: scheduler_owner(redis), 30, "the worker's scheduler to take the lock")
    sandbox.sandboxes.glu.faults.arm({"mode": "slow", "seconds": 1.5, "count": 1})
    assert post_order(client, "before-the-outage") == 202
    # The ingest job delivers the order itself (issue 16): it is the job on its way to the platform.
    delivery = get_queue(redis, INGEST_QUEUE).started_job_registry
    wait_for(lambda: delivery.get_job_ids(cleanup=False), 20, "the delivery to start")
    own_redis.stop()  # while the delivery is on its way to the platform
    time.sleep(2.0)
    own_redis.start()

    assert post_order(client, "after-the-outage", order_id=6200407294253) == 202
    wait_for(lambda: len(activities(sandbox)) == 2, 20, f"both orders to be delivered\n{workers.log()}")
    finished = get_queue(redis, INGEST_QUEUE).finished_job_registry
    wait_for(lambda: finished.count == 2, 10, f"both deliveries to be recorded\n{workers.log()}")
    assert proc.poll() is None, workers.log()  # the same process throughout
    assert registered_worker_pids(redis) == {proc.pid}
    job_id, due = schedule_probe(redis, 1.5)  # and its scheduler came through too
    assert lateness(redis, job_id, due) <= LATENESS_LIMIT, workers.log()


def pool_children(pool: subprocess.Popen[bytes]) -> set[int]:
    """The live processes of a ``connector worker`` pool (its direct children: workers, scheduler)."""
    path = Path(f"/proc/{pool.pid}/task/{pool.pid}/children")
    return {int(pid) for pid in path.read_text().split()} if path.exists() else set()


# --- issue 16: the default worker is a pool of simple workers; a dead one loses nothing ---------


def test_a_pool_replaces_a_child_sigkilled_mid_job_and_the_job_still_runs(env, redis, workers):
    env()
    pool = workers.worker("--processes", "2")
    wait_for(lambda: len(registered_worker_pids(redis) & pool_children(pool)) == 2, 30, "two pool workers")
    queue = get_queue(redis, DELIVERY_QUEUE)
    job = queue.enqueue("time.sleep", 1.5, retry=Retry(max=3))
    running = wait_for(lambda: queue.started_job_registry.get_job_ids(cleanup=False), 20, "the job to start")
    assert running == [job.id]
    runner = next(pid for pid in registered_worker_pids(redis) if _current_job(redis, pid) == job.id)
    os.kill(runner, signal.SIGKILL)  # mid-job: no chance to record anything
    wait_for(lambda: fetch_job(redis, job.id).get_status() == "finished", 30, f"the job to run again\n{workers.log()}")
    assert int(redis.hget(job.key, "connector_worker_deaths") or 0) == 1  # counted, not yet a killer
    wait_for(lambda: len(registered_worker_pids(redis) & pool_children(pool) - {runner}) == 2, 10, "a new child")
    assert scheduler_owner(redis)  # the pool process's scheduler
    assert pool.poll() is None


def _current_job(redis: Redis, pid: int) -> str | None:
    for key in redis.smembers("rq:workers"):
        if int(redis.hget(key, "pid") or 0) == pid:
            current = redis.hget(key, "current_job")
            return current.decode() if current else None
    return None


@pytest.mark.parametrize("options", [("--processes", "2"), ("--worker-class", "fork")])
def test_a_job_that_keeps_killing_its_worker_process_ends_failed_with_a_reason(options, env, redis, workers):
    env()
    proc = workers.worker(*options)
    queue = get_queue(redis, DELIVERY_QUEUE)
    job = queue.enqueue("os.abort", retry=Retry(max=10))  # SIGABRT: what a crash in native code looks like
    wait_for(lambda: queue.failed_job_registry.get_job_ids() == [job.id], 60, f"the job to fail\n{workers.log()}")
    failed = fetch_job(redis, job.id)
    reason = failed.latest_result().exc_string if failed.latest_result() else ""
    assert failed.get_status() == "failed"
    assert f"the worker process died while running this job {WORKER_DEATH_LIMIT} times" in (reason or ""), reason
    assert int(redis.hget(job.key, "connector_worker_deaths") or 0) == WORKER_DEATH_LIMIT  # not one more
    time.sleep(1.0)
    assert proc.poll() is None, workers.log()  # the worker (pool) carries on
    assert registered_worker_pids(redis)


def test_an_unreadable_job_goes_to_failed_and_the_worker_carries_on(client, sandbox, redis, work):
    queue = get_queue(redis, INGEST_QUEUE)
    queue.enqueue("time.time", job_id="unreadable")
    redis.hset("rq:job:unreadable", "created_at", "not a time")  # a hash RQ cannot read back
    assert post_order(client, "after-the-unreadable-one") == 202
    work()
    assert queue.failed_job_registry.get_job_ids() == ["unreadable"]
    assert "unreadable job" in redis.hget("rq:job:unreadable", "exc_info").decode()
    assert len(activities(sandbox)) == 1


def test_a_bad_pool_size_is_a_clear_start_up_error(env):
    env()
    bad = {**os.environ, "CONNECTOR_WORKER_PROCESSES": "lots"}
    run = subprocess.run(
        [sys.executable, "-m", "connector.cli", "worker"], env=bad, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1, run.stderr
    assert "CONNECTOR_WORKER_PROCESSES: 'lots' is not a whole number >= 1" in run.stderr
    assert "Traceback" not in run.stderr
    flag = subprocess.run(
        [sys.executable, "-m", "connector.cli", "worker", "--processes", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert flag.returncode == 2 and "is not a whole number >= 1" in flag.stderr


def test_an_idle_worker_takes_a_new_ingest_job_at_once(env, redis, workers):
    # An idle worker blocks on the ingest queue, where webhooks arrive; it used to block on the
    # first queue in priority (the connection checks', since issue 14) and saw an ingest job only
    # when that block timed out: up to BLOCK_SECONDS (1 s) late, half a second on average.
    env()
    worker = workers.worker()
    wait_for(lambda: registered_worker_pids(redis), 30, "the worker to register")
    queue = get_queue(redis, INGEST_QUEUE)
    waits = []
    for index in range(5):
        time.sleep(1.3 + 0.17 * index)  # idle, at another point of its block each time
        job = queue.enqueue("time.sleep", 0, result_ttl=60)
        queued = time.monotonic()
        wait_for(lambda: fetch_job(redis, job.id).get_status() == "finished", 10, "the job to run")  # noqa: B023
        waits.append(time.monotonic() - queued)
    assert max(waits) < 0.4, waits  # before: each uniform over 0-1 s (all five under 0.4 s: 1 %)
    assert worker.poll() is None


def test_a_job_that_reaches_a_handed_back_claim_list_is_handed_back_too(redis):
    """Defence in depth for the case above: whatever moves a job into a dead worker's claim list
    after recovery handed the list back, the next recovery hands it back again."""
    from connector.recovery import CLAIMANTS_KEY, claim_key, host_identity, recover_lost_jobs

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    key = claim_key("dead-worker-of-this-test")
    redis.hset(CLAIMANTS_KEY, key, f"{host_identity()}|{dead.pid}|0")
    queue = get_queue(redis, INGEST_QUEUE)
    first = queue.enqueue("os.getpid")
    redis.lmove(queue.key, key, "LEFT", "RIGHT")  # claimed by the worker, which then died
    assert recover_lost_jobs(redis) == 1
    assert redis.lrange(queue.key, 0, -1) == [first.id.encode()] and not redis.hexists(CLAIMANTS_KEY, key)
    redis.lmove(queue.key, key, "LEFT", "RIGHT")  # a wait the dead worker left in Redis takes it again
    assert recover_lost_jobs(redis) == 1
    assert redis.lrange(queue.key, 0, -1) == [first.id.encode()] and redis.llen(key) == 0
