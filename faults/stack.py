"""The real stack of a fault run, and the faults done to its processes.

Embedded Redis (append-only file on, its own data directory, killed with SIGKILL and restarted on
the same directory and port), the sandbox server (``connector sandbox``), the web app under
gunicorn with ``config/gunicorn.conf.py`` and several ``connector worker`` processes: pools of
simple workers (the default kind, ``--processes``; a kill hits one of a pool's children, which the
pool replaces, or now and then the pool process itself), fork and simple single workers. Every
process started here is stopped by :meth:`Stack.close`, which the run calls in a ``finally``
(SIGTERM and SIGINT are turned into ``KeyboardInterrupt`` first, so Ctrl-C cleans up too).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import requests
from redis import Redis

from bench.__main__ import answers
from connector.embedded_redis import EmbeddedRedis, free_port
from connector.queue import connect

ROOT = Path(__file__).resolve().parent.parent


POOL = "pool"  # the default ``connector worker``: a pool of simple workers


@dataclass
class Worker:
    """One ``connector worker`` process (``worker_class`` fork, simple or :data:`POOL`)."""

    number: int
    worker_class: str
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    killed: bool = False


def pool_children(pid: int) -> list[int]:
    """The worker processes of a pool (its direct children)."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@dataclass
class Stack:
    """Processes of one run, all on loopback, logs under ``workdir``."""

    workdir: Path
    tenants_toml: str
    fork_workers: int = 3
    simple_workers: int = 1
    pool_workers: int = 1
    pool_processes: int = 2
    retry_schedule: str = "1,2,4,8,15"
    web_workers: int = 3
    redis: EmbeddedRedis | None = None
    sandbox_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    workers: list[Worker] = field(default_factory=list)
    others: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = field(default_factory=list)
    horses: set[int] = field(default_factory=set)
    worker_kills: int = 0
    pool_child_kills: int = 0
    horse_kills: int = 0
    unexpected_exits: int = 0
    redis_kills: int = 0
    _numbers: int = 0

    @property
    def sandbox_url(self) -> str:
        """The sandbox server."""
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def web_url(self) -> str:
        """The web app."""
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment of every process."""
        assert self.redis is not None
        return {
            **os.environ,
            "REDIS_URL": self.redis.local_url,
            "CONNECTOR_TENANTS_FILE": str(self.workdir / "tenants.toml"),
            "CONNECTOR_RETRY_SCHEDULE": self.retry_schedule,
            "CONNECTOR_HTTP_TIMEOUT": "5",
            "CONNECTOR_BIND": f"127.0.0.1:{self.web_port}",
            "WEB_CONCURRENCY": str(self.web_workers),
            "PYTHONPATH": str(ROOT),
            # -- issue 16 jobs: the report follows each webhook through its finished ingest job's result --
            "CONNECTOR_FINISHED_JOB_RETENTION": os.environ.get("CONNECTOR_FINISHED_JOB_RETENTION", "86400"),
            # -- end issue 16 jobs --
        }

    def client(self) -> Redis:
        """A Redis client with the workers' timeouts."""
        assert self.redis is not None
        return connect(self.redis.local_url)

    def _spawn(self, name: str, argv: list[str]) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
        # Output to files: an unread pipe would block a chatty process mid-run. Own session, so a
        # Ctrl-C in the terminal reaches only this run, which then stops every child itself.
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return proc, log

    def _wait_ready(self, proc: subprocess.Popen[bytes], name: str, url: str) -> None:
        probe = answers(url)
        deadline = time.monotonic() + 60
        while not probe():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {self.workdir / (name + '.log')}")
            time.sleep(0.2)

    def start(self) -> None:
        """Redis, sandbox, web, workers; returns when all answer."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "tenants.toml").write_text(self.tenants_toml)
        self.redis = EmbeddedRedis(self.workdir / "redis", appendonly=True).start()
        sandbox = self._spawn(
            "sandbox", [sys.executable, "-m", "connector.cli", "sandbox", "--port", str(self.sandbox_port)]
        )
        self.others.append(sandbox)
        self._wait_ready(sandbox[0], "sandbox", f"{self.sandbox_url}/")
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        web = self._spawn("web", [gunicorn, "-c", "config/gunicorn.conf.py", "wsgi:app"])
        self.others.append(web)
        self._wait_ready(web[0], "web", f"{self.web_url}/healthz")
        for _ in range(self.fork_workers):
            self.start_worker("fork")
        for _ in range(self.simple_workers):
            self.start_worker("simple")
        for _ in range(self.pool_workers):
            self.start_worker(POOL)

    def start_worker(self, worker_class: str) -> Worker:
        """One more ``connector worker`` of that class (:data:`POOL`: the default command)."""
        self._numbers += 1
        argv = [sys.executable, "-m", "connector.cli", "worker"]
        if worker_class == POOL:
            argv += ["--processes", str(self.pool_processes)]
        else:
            argv += ["--worker-class", worker_class, "--processes", "1"]
        proc, log = self._spawn(f"worker-{self._numbers}-{worker_class}", argv)
        worker = Worker(self._numbers, worker_class, proc, log)
        self.workers.append(worker)
        return worker

    def _horse_of(self, pid: int) -> int:
        """The work horse pid a fork worker recorded in its Redis hash (0 when none)."""
        try:
            client = self.client()
            for key in client.smembers("rq:workers"):
                data = client.hgetall(key)
                if int(data.get(b"pid", 0) or 0) == pid:
                    return int(data.get(b"horse_pid", 0) or 0)
        except Exception:
            return 0
        return 0

    def kill_worker(self, rng: random.Random, with_horse: bool) -> str:
        """SIGKILL one running worker (and its horse when asked), start a replacement of its class."""
        alive = [w for w in self.workers if w.proc.poll() is None]
        if not alive:
            return "no worker alive"
        victim = rng.choice(alive)
        children = pool_children(victim.proc.pid) if victim.worker_class == POOL else []
        if children and rng.random() < 0.75:  # mostly a pool's child: the pool replaces it
            child = rng.choice(children)
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                return f"worker {victim.number} (pool): child {child} already gone"
            self.worker_kills += 1
            self.pool_child_kills += 1
            return f"SIGKILL worker {victim.number} (pool)'s child {child}; the pool replaces it"
        horse = self._horse_of(victim.proc.pid) if victim.worker_class == "fork" else 0
        if horse > 0:
            self.horses.add(horse)
        victim.killed = True
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        victim.log.close()
        self.worker_kills += 1
        what = f"worker {victim.number} ({victim.worker_class})"
        if horse > 0 and with_horse and self._ours(horse):
            try:
                os.kill(horse, signal.SIGKILL)
                self.horse_kills += 1
                what += f" and its horse {horse}"
            except ProcessLookupError:
                pass
        self.workers.remove(victim)
        self._wait_children_gone(children)  # SIGTERMed by the kernel: they finish their job first
        self.start_worker(victim.worker_class)
        return f"SIGKILL {what}; replacement started"

    def _wait_children_gone(self, children: list[int], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(self._ours(child) for child in children):
            time.sleep(0.05)
        for child in children:  # one stuck past the HTTP timeout: a hard stop
            if self._ours(child):
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _ours(self, pid: int) -> bool:
        """Whether ``pid`` is still a process of this run (pids are reused: check its environment)."""
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            return False
        return f"CONNECTOR_TENANTS_FILE={self.workdir / 'tenants.toml'}".encode() in environ.split(b"\0")

    def replace_exited_workers(self) -> list[str]:
        """Restart workers that exited on their own (a process manager would); counted."""
        notes = []
        for worker in [w for w in self.workers if w.proc.poll() is not None and not w.killed]:
            self.unexpected_exits += 1
            notes.append(
                f"worker {worker.number} ({worker.worker_class}) exited by itself "
                f"(status {worker.proc.returncode}); restarted"
            )
            worker.log.close()
            self.workers.remove(worker)
            self.start_worker(worker.worker_class)
        return notes

    def kill_redis(self) -> None:
        """SIGKILL the Redis server: no shutdown, no final AOF rewrite."""
        assert self.redis is not None and self.redis.process is not None
        self.redis.process.send_signal(signal.SIGKILL)
        self.redis.process.wait()
        self.redis.process = None
        self.redis_kills += 1

    def restart_redis(self) -> None:
        """Start Redis again on the same data directory and port."""
        assert self.redis is not None
        self.redis.start(timeout=60)

    def arm(self, vendor: str, spec: dict[str, object]) -> None:
        """Arm one fault at a vendor sandbox."""
        requests.post(f"{self.sandbox_url}/{vendor}/_sandbox/faults", json=spec, timeout=10).raise_for_status()

    def disarm(self, vendor: str) -> None:
        """Clear a vendor sandbox's faults."""
        requests.delete(f"{self.sandbox_url}/{vendor}/_sandbox/faults", timeout=10).raise_for_status()

    def close(self) -> None:
        """Stop every process this stack started: workers, web, sandbox, orphaned horses, Redis last."""
        for worker in self.workers:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10  # a warm shutdown finishes the current job (5 s HTTP timeout)
        for worker in self.workers:
            try:
                worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
            worker.log.close()
        for proc, log in reversed(self.others):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()
        for horse in self.horses:  # a horse whose worker was killed finishes its job, then exits
            if self._ours(horse):
                try:
                    os.kill(horse, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.redis is not None:
            self.redis.stop()
