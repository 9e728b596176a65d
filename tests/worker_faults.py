"""A real ``connector worker`` with one fault at an exact point, for tests/test_worker_reliability.py.

Usage: ``python tests/worker_faults.py MODE MARKER_DIR [worker options...]``.

The fault point is the first restore of an ingest job from its hash, which both RQ's own dequeue
and the connector's come to right after taking the job id off its queue (the connector's claim
reads the hash in the same round trip), before the started registry is written: the window in
which a job id exists nowhere but in the worker.

* ``kill-after-pop``: the worker SIGKILLs itself there.
* ``wait-after-pop``: it writes ``popped`` and waits there until ``go`` exists (the test kills
  it or restarts Redis meanwhile); if the read then fails it writes ``read-failed``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import rq.job


def main() -> None:
    mode, markers, options = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    original = rq.job.Job.restore
    fired = [False]

    def restore(job: rq.job.Job, raw: Any) -> Any:
        if fired[0] or not job.id.startswith("ingest-"):
            return original(job, raw)
        fired[0] = True
        (markers / "popped").write_text(job.id)
        if mode == "kill-after-pop":
            os.kill(os.getpid(), signal.SIGKILL)
        while not (markers / "go").exists():
            time.sleep(0.02)
        try:
            # The hash as it is now (the claim's copy was read before the fault).
            return original(job, job.connection.hgetall(job.key) or raw)
        except Exception:
            (markers / "read-failed").write_text(job.id)
            raise

    rq.job.Job.restore = restore  # type: ignore[method-assign]
    from connector.cli import main as cli

    cli(["worker", *options])


if __name__ == "__main__":
    main()
