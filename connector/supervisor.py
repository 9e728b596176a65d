"""The process supervisor behind ``connector run`` (``make run``).

Each child (the sandbox, gunicorn, the worker; the embedded Redis) runs in its own session, so a
Ctrl-C in the terminal (SIGINT to the whole foreground process group) or a group SIGTERM reaches
only ``connector run``, which then stops the children in order: web and worker first, then the
sandbox they call, Redis last (a worker that loses Redis before it exits prints tracebacks and
leaves its registrations behind).

A child that exits while the stack runs is restarted after a backoff (0.5 s doubling up to 30 s,
back to 0.5 s once a child has stayed up for ``start_window`` seconds). Only a child that keeps
exiting right after its start (``max_start_failures`` times in a row, each within
``start_window`` seconds) makes the supervisor give up: that is a configuration error, not a
crash, and restarting it forever would only hide the message.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TextIO

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
START_WINDOW = 10.0
MAX_START_FAILURES = 5
PR_SET_PDEATHSIG = 1


class CrashLoopError(Exception):
    """A child kept exiting right after it started; the message says which and how."""


class Service(Protocol):
    """Something the supervisor can start, watch and stop."""

    name: str

    def start(self) -> None:
        """Start it (again); return once it runs."""

    def returncode(self) -> int | None:
        """``None`` while it runs, else its exit status (negative: killed by that signal)."""

    def signal(self, signum: int) -> None:
        """Send ``signum`` to it and to everything it started (its process group)."""

    def alive(self) -> bool:
        """Whether it, or anything left of its process group, still runs."""


def describe_exit(status: int) -> str:
    """``exit status 2`` or ``killed by SIGKILL``."""
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


def _libc_prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None  # not Linux (no prctl)


# Looked up in the parent: the child, between fork and exec, must not load libraries.
_PRCTL = _libc_prctl() if sys.platform.startswith("linux") else None


def die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when ``connector run`` dies, even by SIGKILL (Linux).

    Without it a SIGKILLed ``connector run`` would leave its children running: they are in
    their own sessions, so nothing else tells them. Elsewhere this does nothing.
    """
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class ProcessService:
    """A command run in its own session (process group), restartable."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the command in a new session."""
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            start_new_session=True,
            preexec_fn=die_with_parent if _PRCTL is not None else None,
        )

    @property
    def pid(self) -> int | None:
        """The pid (also the process group id) of the current process."""
        return self.process.pid if self.process else None

    def returncode(self) -> int | None:
        """``None`` while it runs."""
        return self.process.poll() if self.process else 0

    def signal(self, signum: int) -> None:
        """Signal the whole process group (a gunicorn master's workers, an RQ work horse)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def alive(self) -> bool:
        """The process, or an orphan of its group (a gunicorn worker holding the port), runs."""
        if self.process is None:
            return False
        if self.process.poll() is None:
            return True
        try:
            os.killpg(self.process.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True


@dataclass
class _Child:
    service: Service
    started_at: float = 0.0
    start_failures: int = 0
    restarts: int = 0
    restart_at: float | None = None
    last_status: int = 0


@dataclass
class Supervisor:
    """Start services, restart the ones that die, stop them in order.

    ``stop_order`` lists groups of service names stopped together, first group first; services
    not named are stopped with the first group.
    """

    services: Sequence[Service]
    stop_order: Sequence[Sequence[str]] = ()
    start_window: float = START_WINDOW
    max_start_failures: int = MAX_START_FAILURES
    backoff_first: float = BACKOFF_FIRST
    backoff_max: float = BACKOFF_MAX
    stop_timeout: float = 20.0
    out: TextIO = field(default_factory=lambda: sys.stderr)
    clock: Callable[[], float] = time.monotonic
    _children: list[_Child] = field(default_factory=list, init=False)

    def say(self, message: str) -> None:
        """One line on the supervisor's output, marked as ours."""
        print(f"connector run: {message}", file=self.out, flush=True)

    def start(self) -> None:
        """Start every service, in the order given.

        Raises:
            CrashLoopError: one did not start at all (its error is in the message).
        """
        for service in self.services:
            child = _Child(service)
            self._children.append(child)
            try:
                service.start()
            except (OSError, RuntimeError) as exc:
                raise CrashLoopError(f"{service.name} did not start: {exc}") from None
            child.started_at = self.clock()

    def check(self) -> None:
        """Restart services that exited, once their backoff is over.

        Raises:
            CrashLoopError: a service exited ``max_start_failures`` times in a row right after starting.
        """
        now = self.clock()
        for child in self._children:
            service = child.service
            if child.restart_at is None:
                status = service.returncode()
                if status is None:
                    continue
                self._schedule_restart(child, status, now)
            elif now >= child.restart_at:
                if service.alive():
                    # What is left of its group (gunicorn workers holding the port, a work horse
                    # finishing its job) gets SIGTERM and some time, then SIGKILL.
                    service.signal(signal.SIGTERM if now < child.restart_at + 10 else signal.SIGKILL)
                    continue
                child.restart_at = None
                child.restarts += 1
                child.started_at = self.clock()
                try:
                    service.start()
                except (OSError, RuntimeError) as exc:  # e.g. Redis could not open its port
                    self.say(f"{service.name} did not start: {exc}")
                    self._schedule_restart(child, 1, self.clock())
                    continue
                self.say(f"{service.name} restarted (restart {child.restarts})")

    def _schedule_restart(self, child: _Child, status: int, now: float) -> None:
        name = child.service.name
        uptime = now - child.started_at
        child.last_status = status
        # Only exits right after a start count towards giving up; a child that ran for a while
        # crashed (or was killed) and is simply restarted, with the backoff reset.
        child.start_failures = child.start_failures + 1 if uptime < self.start_window else 0
        if child.start_failures >= self.max_start_failures:
            raise CrashLoopError(
                f"{name} exited {child.start_failures} times in a row within {self.start_window:g} s "
                f"of starting (last: {describe_exit(status)}). That is usually a configuration "
                f"error: see {name}'s output above. Stopping everything."
            )
        delay = min(self.backoff_max, self.backoff_first * 2 ** max(0, child.start_failures - 1))
        child.restart_at = now + delay
        child.service.signal(signal.SIGTERM)  # the rest of its group, if any
        self.say(f"{name} exited ({describe_exit(status)}) after {uptime:.1f} s; restarting it in {delay:g} s")

    def stop(self, hurry: Callable[[], bool] = lambda: False) -> None:
        """SIGTERM each group of services in ``stop_order``, wait for it, SIGKILL what stays."""
        by_name = {child.service.name: child.service for child in self._children}
        named = {name for group in self.stop_order for name in group}
        groups = [[s for s in by_name.values() if s.name not in named]]
        groups += [[by_name[name] for name in group if name in by_name] for group in self.stop_order]
        for group in groups:
            running = [service for service in group if service.alive()]
            for service in running:
                service.signal(signal.SIGTERM)
            deadline = self.clock() + self.stop_timeout
            killed = False
            while any(service.alive() for service in running):
                if not killed and (self.clock() > deadline or hurry()):
                    for service in running:
                        if service.alive():
                            self.say(f"{service.name} did not stop in time; killing it")
                            service.signal(signal.SIGKILL)
                    killed, deadline = True, self.clock() + 5
                elif killed and self.clock() > deadline:
                    break  # SIGKILLed and still listed: nothing more to do from here
                time.sleep(0.05)
