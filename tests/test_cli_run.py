"""``connector run`` (``make run``): everything starts, answers, and stops again on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from connector.embedded_redis import free_port

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


def test_run_starts_everything_and_sigterm_stops_every_process(tmp_path):
    # A scratch working directory, so the embedded Redis keeps its data (var/redis) there.
    (tmp_path / "config").symlink_to(ROOT / "config")
    (tmp_path / "wsgi.py").symlink_to(ROOT / "wsgi.py")
    web = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "REDIS_URL"},  # the embedded server
        "CONNECTOR_BIND": f"127.0.0.1:{web}",
        "CONNECTOR_TENANTS_FILE": "config/demo-tenants.toml",
        "DEMO_SHOPIFY_SECRET": "demo-shopify-secret",
        "WEB_CONCURRENCY": "2",
        "PYTHONPATH": str(ROOT),
    }
    run = subprocess.Popen(
        [sys.executable, "-m", "connector.cli", "run", "--sandbox-port", str(free_port()),
         "--redis-port", str(free_port())],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert run.poll() is None, run.stdout.read().decode() if run.stdout else ""
            try:
                if requests.get(f"http://127.0.0.1:{web}/readyz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "connector run did not become ready"
            time.sleep(0.2)
        sent = subprocess.run(
            [sys.executable, "-m", "connector.cli", "send-sample", "--tenant", "demo", "--url", f"http://127.0.0.1:{web}"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
        )
        assert "-> 202" in sent.stdout, sent.stdout + sent.stderr
        assert (tmp_path / "var/redis/redis.sock").exists()  # make run talks to Redis over its socket
        assert len(processes_working_in(tmp_path)) >= 6  # run, redis, sandbox, gunicorn + workers, worker
    finally:
        run.send_signal(signal.SIGTERM)
        output = run.communicate(timeout=60)[0].decode()
    assert "stopping" in output
    deadline = time.monotonic() + 10
    while processes_working_in(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_working_in(tmp_path) == [], output[-2000:]
