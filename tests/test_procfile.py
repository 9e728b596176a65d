"""The Procfile, run as a platform runs it: ``honcho start`` brings up the web tier and a worker.

honcho hands each process ``PORT`` (the web process listens there: config/gunicorn.conf.py lets
``PORT`` win), the environment names Redis and the tenants; a signed webhook sent to that port
reaches the Glu sandbox through the worker; SIGTERM or SIGINT to honcho stops both processes
within honcho's grace period (no SIGKILL needed) and the worker leaves the Redis registry.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import GLU_KEY, SHOPIFY_SECRET, load_fixture, shopify_headers, tenants_toml
from rq import Worker

from connector.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Variables of the developer's shell that would change what the Procfile's processes do.
CLEARED = ("CONNECTOR_BIND", "PORT", "WEB_CONCURRENCY", "CONNECTOR_WEB_THREADS", "CONNECTOR_ADMIN_PASSWORD")


def _until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_honcho_start_runs_the_procfile_end_to_end(tmp_path, redis, redis_url, sandbox, stop_signal):
    port = free_port()
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(tenants_toml(sandbox.url))
    empty_env_file = tmp_path / "empty.env"  # not a .env the developer may keep in the checkout
    empty_env_file.write_text("")
    env = {
        **{key: value for key, value in os.environ.items() if key not in CLEARED},
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # gunicorn and connector
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": redis_url,
        "CONNECTOR_TENANTS_FILE": str(tenants),
        "CONNECTOR_RETRY_SCHEDULE": "0,0,0",
        "TEST_GLU_KEY": GLU_KEY,
        "TEST_SHOPIFY_SECRET": SHOPIFY_SECRET,
        "WEB_CONCURRENCY": "1",
        "CONNECTOR_WEB_THREADS": "4",
    }
    log_path = tmp_path / "honcho.log"
    with log_path.open("wb") as log:
        honcho = subprocess.Popen(
            [str(BIN / "honcho"), "start", "--no-colour", "-e", str(empty_env_file), "-p", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _until(lambda: _answers(port) or honcho.poll() is not None, 30, "the web process on $PORT")
            assert honcho.poll() is None, log_path.read_text()
            # The default worker: a pool of one simple worker per CPU (issue 16).
            _until(lambda: len(Worker.all(connection=redis)) == (os.cpu_count() or 1), 30, "the workers to register")

            order = json.loads(load_fixture("shopify", "orders_paid"))
            body = json.dumps(order).encode()
            with requests.Session() as session:
                answer = session.post(
                    f"http://127.0.0.1:{port}/webhooks/harbour/shopify",
                    data=body,
                    headers={**shopify_headers(body, webhook_id="procfile-1"), "Connection": "close"},
                    timeout=10,
                )
            assert answer.status_code == 202, answer.text
            _until(lambda: len(sandbox.sandboxes.glu.state()["activities"]) == 1, 30, "the delivery at the sandbox")

            honcho.send_signal(stop_signal)
            honcho.wait(timeout=30)
        finally:
            if honcho.poll() is None:  # a failed check: honcho stops its processes on SIGTERM
                honcho.terminate()
                try:
                    honcho.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    honcho.kill()
                    honcho.wait()
    output = log_path.read_text()
    pids = {name: int(pid) for name, pid in re.findall(r"\| (web|worker)\.1 started \(pid=(\d+)\)", output)}
    assert set(pids) == {"web", "worker"}, output
    assert "SIGKILL" not in output, output  # both stopped on SIGTERM, within honcho's 5 s
    assert re.search(r"\| web\.1 stopped", output) and re.search(r"\| worker\.1 stopped", output), output
    _until(lambda: not any(_alive(pid) for pid in pids.values()), 10, "both processes to be gone")
    assert not _answers(port)
    assert Worker.all(connection=redis) == []  # the worker shut down cleanly (deregistered)
