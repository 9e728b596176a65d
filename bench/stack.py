"""The bench's stack outside ``make bench``: embedded Redis, the sandboxes and one intake server.

``python -m bench.profile`` and the bench tooling tests start the same pieces that ``make bench``
does (``connector sandbox``, gunicorn ``wsgi:app`` under ``config/gunicorn.conf.py``, the bench
tenant) through the same public entry points, so they keep working whatever the internals become.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.__main__ import answers, embedded_redis, gunicorn_binary, process, tenants_toml
from connector.embedded_redis import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Stack:
    """What a scenario needs to reach the running stack."""

    env: dict[str, str]  # environment for processes the bench starts (workers)
    redis_url: str
    sandbox: int  # sandbox port
    intake: int  # gunicorn wsgi:app port
    intake_pid: int  # the gunicorn master's pid (its workers are its children)
    tmp: Path  # scratch directory that lives as long as the stack


def stack_env(base: dict[str, str], redis_url: str, tenants: Path) -> dict[str, str]:
    """The environment of every process the bench starts: its Redis, its tenants, this checkout."""
    env = {**base, "REDIS_URL": redis_url, "CONNECTOR_TENANTS_FILE": str(tenants), "PYTHONPATH": str(ROOT)}
    for variable in ("CONNECTOR_WEB_THREADS", "CONNECTOR_WEB_WORKER_CLASS"):
        env.pop(variable, None)  # the defaults of config/gunicorn.conf.py are what is measured
    return env


@contextmanager
def running_stack(appendfsync: str = "always", count_dir: Path | None = None) -> Iterator[Stack]:
    """Start Redis (AOF on), the sandboxes and one intake server; stop them when the block ends.

    With ``count_dir`` the intake server runs with the round-trip counting hook on
    (:mod:`bench.roundtrips`); its counts are in ``count_dir`` once the block has ended.
    """
    from bench.roundtrips import counting_env

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        redis = stack.enter_context(embedded_redis(Path(tmp) / "redis", appendfsync))
        sandbox = free_port()
        tenants = Path(tmp) / "tenants.toml"
        tenants.write_text(tenants_toml(sandbox))
        env = stack_env(dict(os.environ), redis.local_url, tenants)
        stack.enter_context(
            process(
                [sys.executable, "-m", "connector.cli", "sandbox", "--port", str(sandbox)],
                env,
                answers(f"http://127.0.0.1:{sandbox}/"),
                "sandbox",
            )
        )
        intake = free_port()
        web = stack.enter_context(
            process(
                [gunicorn_binary(), "-c", "config/gunicorn.conf.py", "wsgi:app"],
                {**(counting_env(env, count_dir) if count_dir else env), "CONNECTOR_BIND": f"127.0.0.1:{intake}"},
                answers(f"http://127.0.0.1:{intake}/healthz"),
                "intake",
            )
        )
        yield Stack(env, redis.local_url, sandbox, intake, web.pid, Path(tmp))
