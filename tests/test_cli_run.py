"""``connector run`` (``make run``): everything starts on the ports it was given, a killed child is
restarted, and a Ctrl-C or SIGTERM to the whole process group stops every process cleanly.

Every port is a free one chosen here; the run's sandbox is checked at its own port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from redis import Redis

from connector.embedded_redis import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent


def processes_working_in(directory: Path) -> list[int]:
    """Pids of the processes working in ``directory`` or below it (Linux /proc; Redis moves to var/redis)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")).is_relative_to(directory):
                    found.append(int(entry.name))
            except OSError:
                continue  # gone, or not ours to read
    return found


def child_pid(parent: int, needle: str) -> int | None:
    """The pid of ``parent``'s child whose command line contains ``needle``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and needle in cmdline:
            return int(entry.name)
    return None


def wait_for(what: str, check: Callable[[], Any], run: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        assert run.poll() is None, f"connector run exited while waiting for {what}:\n{log.read_text()[-3000:]}"
        try:
            result = check()
        except (requests.RequestException, OSError):
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


class Run:
    """``connector run`` in a scratch directory (its var/ there), on free ports, in its own session."""

    def __init__(self, tmp_path: Path, **extra_env: str) -> None:
        (tmp_path / "config").symlink_to(ROOT / "config")
        (tmp_path / "wsgi.py").symlink_to(ROOT / "wsgi.py")
        self.dir = tmp_path
        self.web, self.sandbox, self.redis = free_port(), free_port(), free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CONNECTOR_TENANTS_FILE")},
            "CONNECTOR_BIND": f"127.0.0.1:{self.web}",
            "CONNECTOR_TENANTS_FILE": "config/demo-tenants.toml",
            "DEMO_SHOPIFY_SECRET": "demo-shopify-secret",
            "WEB_CONCURRENCY": "1",
            "PYTHONPATH": str(ROOT),
            **extra_env,
        }
        self.log = tmp_path / "run.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "connector.cli",
                    "run",
                    "--sandbox-port",
                    str(self.sandbox),
                    "--redis-port",
                    str(self.redis),
                ],
                cwd=tmp_path,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, as a shell gives a foreground job
            )

    @property
    def output(self) -> str:
        return self.log.read_text()

    def wait(self, what: str, check: Callable[[], Any]) -> Any:
        return wait_for(what, check, self.process, self.log)

    def ready(self) -> bool:
        return requests.get(f"http://127.0.0.1:{self.web}/readyz", timeout=1).status_code == 200

    def send_sample(self) -> None:
        # No --url: send-sample finds the web app from CONNECTOR_BIND, as the printed command does.
        sent = subprocess.run(
            [sys.executable, "-m", "connector.cli", "send-sample", "--tenant", "demo"],
            cwd=self.dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert f"POST http://127.0.0.1:{self.web}/webhooks/demo/shopify -> 202" in sent.stdout, (
            sent.stdout + sent.stderr
        )

    def sandbox_orders(self) -> int:
        state = requests.get(f"http://127.0.0.1:{self.sandbox}/glu/_sandbox/state", timeout=2).json()
        return sum(1 for activity in state["activities"] if activity["type"] == "Shopify order")

    def group_signal(self, signum: int) -> str:
        """``signum`` to the whole process group (what a terminal's Ctrl-C does); the output."""
        os.killpg(self.process.pid, signum)
        self.process.wait(timeout=90)
        deadline = time.monotonic() + 15
        while processes_working_in(self.dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.output

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for pid in processes_working_in(self.dir):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass


def test_run_uses_its_own_ports_restarts_killed_children_and_stops_on_group_ctrl_c(tmp_path):
    run = Run(tmp_path)
    try:
        run.wait("readiness", run.ready)
        output = run.output
        # Every URL printed follows --sandbox-port and CONNECTOR_BIND.
        assert f"http://127.0.0.1:{run.web}/webhooks/demo/shopify" in output
        assert f"http://127.0.0.1:{run.web}/readyz" in output
        assert f"curl -s http://127.0.0.1:{run.sandbox}/glu/_sandbox/state" in output
        assert "127.0.0.1:8100" not in output and "127.0.0.1:8000" not in output
        assert f"CONNECTOR_BIND=127.0.0.1:{run.web}" in output  # the printed send-sample command reaches it
        assert f"http://127.0.0.1:{run.sandbox}/glu" in (tmp_path / "var/demo-tenants.toml").read_text()
        assert (tmp_path / "var/redis/redis.sock").exists()  # make run talks to Redis over its socket
        assert len(processes_working_in(tmp_path)) >= 6  # run, redis, sandbox, gunicorn + its worker, worker

        run.send_sample()
        run.wait("the order at this run's sandbox", lambda: run.sandbox_orders() == 1)

        # A SIGKILLed worker and a SIGKILLed gunicorn master are restarted; nothing else stops.
        worker = run.wait("the worker", lambda: child_pid(run.process.pid, "connector worker"))
        os.kill(worker, signal.SIGKILL)
        run.wait("the worker restart", lambda: "worker restarted" in run.output)
        web = run.wait("gunicorn", lambda: child_pid(run.process.pid, "gunicorn"))
        os.kill(web, signal.SIGKILL)
        run.wait("the web restart", lambda: "web restarted" in run.output)
        assert "worker exited (killed by SIGKILL)" in run.output
        assert "web exited (killed by SIGKILL)" in run.output
        run.wait("readiness after the restarts", run.ready)
        assert child_pid(run.process.pid, "connector worker") not in (None, worker)

        run.send_sample()
        run.wait("the second order at this run's sandbox", lambda: run.sandbox_orders() == 2)

        # Ctrl-C in a terminal: SIGINT to every process of the foreground group.
        output = run.group_signal(signal.SIGINT)
    finally:
        run.kill()
    assert run.process.returncode == 0, output[-3000:]
    assert "stopping" in output
    assert "Traceback" not in output, output[-5000:]
    assert processes_working_in(tmp_path) == [], output[-3000:]


def test_group_sigterm_stops_redis_last_without_tracebacks(tmp_path):
    run = Run(tmp_path)
    try:
        run.wait("readiness", run.ready)
        run.wait("the worker", lambda: "Listening on" in run.output or "listening on" in run.output.lower())
        output = run.group_signal(signal.SIGTERM)
    finally:
        run.kill()
    assert "stopping" in output
    assert "Traceback" not in output, output[-5000:]
    assert "Error" not in output.split("stopping", 1)[1], output[-5000:]
    assert processes_working_in(tmp_path) == [], output[-3000:]
    # The worker unregistered before Redis stopped: no ghost worker in the saved data.
    saved = EmbeddedRedis(tmp_path / "var/redis").start()
    try:
        client = Redis(port=saved.port)
        assert client.smembers("rq:workers") == set()
        client.close()
    finally:
        saved.stop()


def test_run_reports_every_configuration_problem_and_a_busy_port_before_starting(tmp_path):
    (tmp_path / "bad.toml").write_text(
        '[tenants.a.loyalty]\nplatform = "glu"\nbase_url = "http://127.0.0.1:1/glu"\napi_key = "env:"\n'
        '[tenants.b]\ntimezone = "Mars/Olympus"\n'
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {
            **{k: v for k, v in os.environ.items() if k != "REDIS_URL"},
            "CONNECTOR_BIND": f"127.0.0.1:{port}",
            "CONNECTOR_TENANTS_FILE": str(tmp_path / "bad.toml"),
            "CONNECTOR_WORKER_CLASS": "bogus",  # only the worker reads it: it would crash-loop
            "PYTHONPATH": str(ROOT),
        }
        (tmp_path / "config").symlink_to(ROOT / "config")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "connector.cli",
                "run",
                "--sandbox-port",
                str(free_port()),
                "--redis-port",
                str(free_port()),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert "tenants.a.loyalty.api_key" in result.stderr and "name of an environment variable" in result.stderr
    assert "tenants.b.timezone" in result.stderr and "tenants.b.loyalty" in result.stderr
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert "CONNECTOR_WORKER_CLASS: 'bogus' is not one of fork, simple" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "var/redis").exists()  # nothing was started


def test_printed_addresses_follow_the_bind_and_hide_redis_passwords():
    from connector.cli import bind_url, redacted_redis_url

    assert bind_url("127.0.0.1:8123") == "http://127.0.0.1:8123"
    assert bind_url("0.0.0.0:9000") == "http://127.0.0.1:9000"
    assert bind_url("[::]:9000") == "http://[::1]:9000"
    assert bind_url("localhost") == "http://localhost:8000"
    assert bind_url("unix:/run/connector.sock") is None
    assert redacted_redis_url("redis://:pw@db:6379/0") == "redis://***:***@db:6379/0"
    assert redacted_redis_url("rediss://user:pw@db:6380/1") == "rediss://***:***@db:6380/1"
    assert redacted_redis_url("unix:///var/run/redis.sock?db=0") == "unix:///var/run/redis.sock?db=0"


def test_the_demo_tenants_copy_points_every_sandbox_url_at_the_run_s_sandbox(tmp_path, monkeypatch):
    import tomllib

    from connector.cli import DEMO_TENANTS, write_demo_tenants
    from connector.settings import parse_tenants

    monkeypatch.setenv("DEMO_SHOPIFY_SECRET", "x")
    copy = write_demo_tenants(ROOT / DEMO_TENANTS, "http://127.0.0.1:45678", tmp_path / "var/demo-tenants.toml")
    text = copy.read_text()
    assert "8100" not in text
    tenants = parse_tenants(tomllib.loads(text))
    assert {str(t.loyalty.base_url) for t in tenants.values()} == {
        "http://127.0.0.1:45678/glu",
        "http://127.0.0.1:45678/loyaltylion",
        "http://127.0.0.1:45678/voucherify",
    }
