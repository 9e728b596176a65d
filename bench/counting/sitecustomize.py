"""Bench-only round-trip counting, loaded by Python at start-up when this folder is on PYTHONPATH.

The bench puts ``bench/counting`` on ``PYTHONPATH`` (and sets ``BENCH_COUNT_DIR``) only for the
processes it starts while counting: the intake's gunicorn and the workers. Nothing in the
connector changes. Counted, per process:

- Redis round trips: calls of ``redis.connection.AbstractConnection.send_packed_command`` (a
  single command sends once; a pipeline or transaction sends all its commands once; the intake's
  EVALSHA on its held connection goes through it too);
- HTTP requests: calls of ``http.client.HTTPConnection.putrequest``, which both
  ``http.client``'s ``request`` and urllib3's ``HTTPConnection.request`` (requests) call once per
  request, so nothing is counted twice; new HTTP connections: urllib3's and http.client's
  ``connect``.

Each count is keyed by what the process was doing: ``<job function>`` while RQ performs a job
(``rq.job.Job.perform``), ``<job function> (bookkeeping)`` for the worker's calls after that
job and before the next one starts (success handling, dequeue, start bookkeeping of the next),
``start-up`` before a worker's first job; in the web app ``webhook <source>`` while Flask answers
``/webhooks/<tenant>/<source>``, ``request /<first segment>`` for other requests (health probes),
``web`` outside requests. A fork worker's parent sets the job when it forks the horse, so its
watching counts as bookkeeping.

Counts are written as JSON to ``$BENCH_COUNT_DIR/<pid>.json`` when the process ends (``atexit``,
and before ``os._exit``, which RQ's forked horses and gunicorn use). Counts inherited through a
fork start again at zero in the child.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

_DIR = os.environ.get("BENCH_COUNT_DIR")
_counts: dict[str, Counter[str]] = {"redis": Counter(), "http": Counter(), "connections": Counter()}
_state = {"doing": "web"}


def _count(kind: str) -> None:
    _counts[kind][_state["doing"]] += 1


def _reset_in_child() -> None:
    for counter in _counts.values():
        counter.clear()


def dump() -> None:
    """Write this process's counts (idempotent: the file holds the totals so far)."""
    if not _DIR:
        return
    record = {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "argv": sys.argv,
        **{kind: dict(c) for kind, c in _counts.items()},
    }
    path = Path(_DIR) / f"{os.getpid()}.json"
    path.write_text(json.dumps(record))


def _wrap(owner: Any, name: str, before: Callable[..., None]) -> None:
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        before(*args, **kwargs)
        return original(*args, **kwargs)

    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(owner, name, wrapper)


def _running_as_the_job(run: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``run(job)`` with the counts keyed by the job's function, then by its bookkeeping."""

    def running(job: Any) -> Any:
        name = job.func_name.rsplit(".", 1)[-1]
        _state["doing"] = name
        try:
            return run(job)
        finally:
            _state["doing"] = f"{name} (bookkeeping)"

    return running


def _install() -> None:
    import http.client

    import redis.connection

    _wrap(redis.connection.AbstractConnection, "send_packed_command", lambda *a, **k: _count("redis"))
    _wrap(http.client.HTTPConnection, "putrequest", lambda *a, **k: _count("http"))
    _wrap(http.client.HTTPConnection, "connect", lambda *a, **k: _count("connections"))
    try:
        import urllib3.connection

        # urllib3's connect does not call http.client's: count it on its own
        _wrap(urllib3.connection.HTTPConnection, "connect", lambda *a, **k: _count("connections"))
    except ImportError:
        pass
    try:
        import flask

        # Flask.__call__ is the server's entry: it reaches the intake's WSGI fast path (an
        # instance's wsgi_app, ahead of Flask's request machinery) and Flask's own alike.
        wsgi_call = flask.Flask.__call__

        def answering(app: Any, environ: dict[str, Any], start_response: Any) -> Any:
            parts = str(environ.get("PATH_INFO", "")).strip("/").split("/")
            webhook = parts[0] == "webhooks" and len(parts) >= 3
            _state["doing"] = f"webhook {parts[2]}" if webhook else f"request /{parts[0]}"
            try:
                return wsgi_call(app, environ, start_response)
            finally:
                _state["doing"] = "web"

        setattr(flask.Flask, "__call__", answering)  # noqa: B010 (a plain assignment fails mypy's method check)
    except ImportError:
        pass
    try:
        import rq.job
        import rq.worker
    except ImportError:
        return
    # Job.perform (RQ's workers) and Job._execute (the connector's, whose completion transaction
    # replaces the rest of perform): the job's own calls are counted as the job's in both.
    for method in ("perform", "_execute"):
        setattr(rq.job.Job, method, _running_as_the_job(getattr(rq.job.Job, method)))

    def forking(worker: Any, job: Any, queue: Any) -> None:
        _state["doing"] = f"{job.func_name.rsplit('.', 1)[-1]} (bookkeeping)"

    _wrap(rq.worker.Worker, "fork_work_horse", forking)
    # A worker's calls before its first job are start-up, not web traffic.
    _wrap(rq.worker.BaseWorker, "work", lambda *a, **k: _state.update(doing="start-up"))


if _DIR:
    _install()
    os.register_at_fork(after_in_child=_reset_in_child)
    atexit.register(dump)
    _exit = os._exit

    def _dumping_exit(code: int) -> None:
        try:
            dump()
        finally:
            _exit(code)

    setattr(os, "_exit", _dumping_exit)  # noqa: B010
