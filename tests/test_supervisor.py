"""The supervisor of ``connector run``: restart what dies, give up on a crash loop, stop in order.

Real child processes (small Python programs), real signals; no timing assertions beyond
generous deadlines.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from connector.supervisor import CrashLoopError, ProcessService, Supervisor


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def run_until(supervisor: Supervisor, done, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "supervisor did not get there in time"
        supervisor.check()
        time.sleep(0.02)


def test_a_killed_child_is_restarted_and_the_others_keep_running():
    sleeper = ProcessService("worker", python("import time; time.sleep(120)"))
    other = ProcessService("web", python("import time; time.sleep(120)"))
    out = io.StringIO()
    supervisor = Supervisor([sleeper, other], start_window=0.0, backoff_first=0.05, out=out)
    supervisor.start()
    try:
        first, web_pid = sleeper.pid, other.pid
        os.kill(first, signal.SIGKILL)
        run_until(supervisor, lambda: sleeper.pid != first and sleeper.returncode() is None)
        assert other.pid == web_pid and other.returncode() is None  # nothing else was touched
        log = out.getvalue()
        assert "worker exited (killed by SIGKILL)" in log
        assert "worker restarted (restart 1)" in log
        second = sleeper.pid
        os.kill(second, signal.SIGKILL)  # and again: the supervisor never gives up on crashes
        run_until(supervisor, lambda: sleeper.pid != second and sleeper.returncode() is None)
        assert "worker restarted (restart 2)" in out.getvalue()
    finally:
        supervisor.stop()
    assert not sleeper.alive() and not other.alive()


def test_a_child_that_keeps_failing_at_start_stops_the_supervisor_with_a_clear_message():
    broken = ProcessService("worker", python("import sys; print('bad setting', file=sys.stderr); sys.exit(2)"))
    out = io.StringIO()
    supervisor = Supervisor([broken], max_start_failures=3, backoff_first=0.01, out=out)
    supervisor.start()
    with pytest.raises(CrashLoopError) as caught:
        run_until(supervisor, lambda: False)
    supervisor.stop()
    message = str(caught.value)
    assert "worker exited 3 times in a row" in message
    assert "exit status 2" in message
    assert "configuration error" in message
    assert out.getvalue().count("restarting it in") == 2  # restarted twice with a backoff, then given up


def test_backoff_doubles_for_repeated_start_failures():
    broken = ProcessService("web", python("raise SystemExit(1)"))
    out = io.StringIO()
    supervisor = Supervisor([broken], max_start_failures=4, backoff_first=0.01, out=out)
    supervisor.start()
    with pytest.raises(CrashLoopError):
        run_until(supervisor, lambda: False)
    supervisor.stop()
    delays = [line.rsplit(" in ", 1)[1] for line in out.getvalue().splitlines() if "restarting it in" in line]
    assert delays == ["0.01 s", "0.02 s", "0.04 s"]


def test_stop_order_web_and_worker_then_sandbox_then_redis(tmp_path: Path):
    log = tmp_path / "stopped"

    def service(name: str, linger: float) -> ProcessService:
        # On SIGTERM: wait a little (a worker finishing its job), note the stop, exit.
        return ProcessService(
            name,
            python(f"""
                import signal, sys, time
                def stop(*_):
                    time.sleep({linger})
                    with open({str(log)!r}, "a") as f:
                        f.write("{name}\\n")
                    sys.exit(0)
                signal.signal(signal.SIGTERM, stop)
                open({str(tmp_path / name)!r}, "w").close()
                while True:
                    time.sleep(1)
            """),
        )

    services = [service("redis", 0), service("sandbox", 0), service("web", 0.3), service("worker", 0.5)]
    supervisor = Supervisor(services, stop_order=[["web", "worker"], ["sandbox"], ["redis"]])
    supervisor.start()
    deadline = time.monotonic() + 30
    while not all((tmp_path / s.name).exists() for s in services):  # every handler installed
        assert time.monotonic() < deadline
        time.sleep(0.02)
    supervisor.stop()
    assert log.read_text().split() == ["web", "worker", "sandbox", "redis"]


def test_children_stop_when_the_supervisor_itself_is_sigkilled():
    import subprocess

    parent = subprocess.Popen(
        python("""
            import sys, time
            from connector.supervisor import ProcessService, Supervisor
            child = ProcessService("worker", [sys.executable, "-c", "import time; time.sleep(120)"])
            Supervisor([child]).start()
            print(child.pid, flush=True)
            time.sleep(120)
        """),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.kill()  # SIGKILL: no handler runs, no stop()
    parent.wait()
    deadline = time.monotonic() + 30
    while running(child):
        assert time.monotonic() < deadline, "the child outlived its supervisor"
        time.sleep(0.05)


def running(pid: int) -> bool:
    """The process exists and is not a zombie waiting for its new parent to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
