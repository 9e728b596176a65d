"""The job of the RQ no-op anchor: RQ's own per-job cost, with nothing of the connector in it."""

from __future__ import annotations


def noop() -> None:
    """Do nothing (the job's whole cost is RQ's bookkeeping)."""
