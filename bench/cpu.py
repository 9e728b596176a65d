"""CPU seconds per request by process, for the intake comparison (``python -m bench --only intake``).

On this 2-core machine the load generator, gunicorn and Redis share the cores, and the intake
runs saturated: its rate is the cores divided by the CPU that all of them spend per request. A
ratio to the bare endpoint is therefore a ratio of CPU budgets, and :class:`CpuSplit` shows where
each server's budget goes (its gunicorn master and workers, its Redis, the load generator), read
from ``/proc`` and ``getrusage`` around each run, so that a missed ratio is explained by what was
measured rather than by estimates.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.footprint import children

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu(pid: int) -> float:
    """User plus system CPU seconds of one process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (proc(5), fields 14 and 15)


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (a gunicorn master and its workers)."""
    return process_cpu(pid) + sum(process_cpu(child) for child in children(pid))


def reaped_children_cpu() -> float:
    """CPU seconds of this process's children that have ended (the load generator's processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuSplit:
    """CPU seconds spent for ``requests`` requests, by process group."""

    requests: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, requests: int, spent: dict[str, float]) -> None:
        """Count one run's requests and its CPU seconds by group."""
        self.requests += requests
        for group, value in spent.items():
            self.seconds[group] = self.seconds.get(group, 0.0) + value

    def per_request_us(self, group: str) -> float:
        """Microseconds of ``group``'s CPU per request."""
        return self.seconds.get(group, 0.0) / self.requests * 1e6 if self.requests else 0.0

    def total_us(self) -> float:
        """Microseconds of CPU per request, every group together."""
        return sum(self.per_request_us(group) for group in self.seconds)


def own_cpu() -> float:
    """CPU seconds of this process so far (the keep-alive anchor posts from it)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU seconds spent by named groups of processes around one run, each group read by its
    own function (:func:`tree_cpu` of a server, :func:`process_cpu` of a Redis,
    :func:`reaped_children_cpu` for processes of this one that end during the run)."""

    def __init__(self, groups: dict[str, Callable[[], float]]) -> None:
        self.groups = groups
        self._start: dict[str, float] = {}
        self.spent: dict[str, float] = {}

    @classmethod
    def for_server(cls, server_pid: int, redis_pid: int | None) -> CpuMeter:
        """A gunicorn server's tree, its Redis (when it has one) and the load generator."""
        groups: dict[str, Callable[[], float]] = {"gunicorn": lambda: tree_cpu(server_pid)}
        if redis_pid is not None:
            groups["Redis"] = lambda: process_cpu(redis_pid)
        groups["load generator"] = reaped_children_cpu
        return cls(groups)

    def __enter__(self) -> CpuMeter:
        self._start = {name: read() for name, read in self.groups.items()}
        return self

    def __exit__(self, *_: object) -> None:
        self.spent = {name: read() - self._start[name] for name, read in self.groups.items()}
