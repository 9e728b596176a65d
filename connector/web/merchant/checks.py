""" "Test connection" from a page: enqueue the check job, wait a bounded time for its answer.

The web tier never calls a vendor: :func:`connection_test` enqueues
``connector.connection_check.check`` (by name: that module reaches the clients) on the check queue
that workers take before every other one, with the tenant's name and the role only (no secret in
job arguments), and polls for its result for ``settings.http_timeout + 5`` seconds. A job no worker
took by then is removed (its TTL would expire it anyway), so it never runs late.
"""

from __future__ import annotations

import time
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from rq.job import Job, JobStatus

from connector.queue import CHECK_FUNC, CHECK_QUEUE
from connector.web.merchant.pages import settings

POLL_SECONDS = 0.1
RESULT_TTL = 300


def wait_seconds() -> float:
    """How long a page waits for the check: the vendor call's timeout plus a margin."""
    return settings().http_timeout + 5


def connection_test(tenant: str, role: str) -> dict[str, Any]:
    """The check job's answer for the tenant's saved ``role`` settings, or why there is none."""
    wait = wait_seconds()
    queue = current_app.extensions["connector.queues"][CHECK_QUEUE]
    try:
        job: Job = queue.enqueue(
            CHECK_FUNC,
            args=(tenant, role),
            ttl=int(wait) + 1,
            result_ttl=RESULT_TTL,
            failure_ttl=RESULT_TTL,
            job_timeout=int(wait) + 5,
            description=f"connection check {tenant}/{role}",
        )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            status = job.get_status(refresh=True)
            if status == JobStatus.FINISHED:
                answer = job.return_value()
                if isinstance(answer, dict):
                    return answer
                break
            if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
                return {"ok": False, "checked": False, "said": "the check job failed: see the worker's log"}
            time.sleep(POLL_SECONDS)
        else:
            job.cancel()
            job.delete()
            return {
                "ok": False,
                "checked": False,
                "no_worker": True,
                "said": f"no worker answered within {wait:.0f} s: is `connector worker` running?",
            }
    except RedisError:
        return {"ok": False, "checked": False, "said": "the queue is unavailable (Redis): try again in a moment"}
    return {"ok": False, "checked": False, "said": "the check job gave no answer: see the worker's log"}
