"""A short ``make faults`` run in the suite: every fault of the full run, every target met.

150 logical webhooks of every family, each delivered three times, through the real stack (gunicorn,
embedded Redis, the sandbox server, a pool of simple workers (the default ``connector worker``),
a fork and a simple worker) while a worker is SIGKILLed every 3 s
(and replaced), Redis is SIGKILLed once and restarted on its data, every vendor answers 5 % 500s,
Glu, LoyaltyLion, Voucherify, Klaviyo and Mailchimp store some creates and then lose their answer
(``drop_after``), and Glu, LoyaltyLion and Klaviyo answer bursts of 429 with ``Retry-After``.
Seven retries, so that a job failing every attempt (about one Mews ingest in a million) does not
make the test flaky; no 429 bursts at Mailchimp, whose 10 s pause (it documents no 429 signal)
would outlast them. Before issue 11's fixes the kills orphaned acknowledged jobs, stalled retries
for a minute and more, and the lost answers doubled Voucherify activities and Mailchimp events.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_short_fault_run_meets_every_target() -> None:
    argv = [
        sys.executable,
        "-m",
        "faults",
        "--webhooks",
        "150",
        "--rate",
        "40",
        "--kill-every",
        "3",
        "--redis-kill",
        "--drop-at",
        "glu,loyaltylion,voucherify,klaviyo,mailchimp",
        "--drop-rate",
        "0.05",
        "--burst-every",
        "3",
        "--burst-at",
        "glu,loyaltylion,klaviyo",
        "--redeliver-within",
        "3",
        "--pool-workers",
        "1",
        "--pool-processes",
        "2",
        "--fork-workers",
        "1",
        "--simple-workers",
        "1",
        "--error-rate",
        "0.05",
        "--retry-schedule",
        "1,1,2,2,3,4,5",
        "--drain-timeout",
        "90",
        "--progress",
        "30",
    ]
    run = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    out = run.stdout
    assert run.returncode == 0, out[-4000:] + run.stderr[-2000:]
    total = re.search(r"^total\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", out, re.MULTILINE)
    assert total is not None, out[-4000:]
    webhooks, acked, not_acked, delivered, ignored, failed = (int(n) for n in total.groups())
    assert (webhooks, acked, not_acked, ignored) == (150, 150, 0, 0), out[-4000:]
    # Every one delivered, or (at most one in a hundred) failed with its reason: a job SIGKILLed
    # with its worker three times by this run's kill every 3 s, or whose every attempt of the short
    # retry schedule met an injected fault, ends failed (the exit status says it has a reason).
    assert delivered + failed == 150 and failed <= 1, out[-4000:]
    assert "targets: 0 lost or unfinished met; 0 doubled met" in out
    assert "0 never-run met" in out and "worst retry lateness < 5 s met" in out
    assert re.search(
        r"faults: [1-9]\d* worker SIGKILLs .*, 1 Redis SIGKILL, 0 workers exited by themselves", out
    )  # kills happened; item 4
    retries = re.search(r"(\d+) retries measured", out)
    assert retries is not None and int(retries.group(1)) > 0  # the injected faults did force retries
