"""Shared pieces of the tests that look at the whole stack: gunicorn with the project's config, and
every text Redis holds (for the scans that must find no secret and no erased address)."""

from __future__ import annotations

import base64
import http.client
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GUNICORN_CONFIG = ROOT / "config" / "gunicorn.conf.py"


@contextmanager
def gunicorn_server(env: dict[str, str], *, start_timeout: float = 30.0) -> Iterator[subprocess.Popen[bytes]]:
    """``gunicorn -c config/gunicorn.conf.py wsgi:app`` with ``env`` (which names the port in
    ``CONNECTOR_BIND``), once it answers ``/healthz``; stopped (and reaped) on the way out."""
    host, port = env["CONNECTOR_BIND"].rsplit(":", 1)
    # Its log goes to a file, not a pipe: a pipe nobody reads would stall a chatty server.
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG), "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                conn = http.client.HTTPConnection(host, int(port), timeout=1)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                log.seek(0)
                raise RuntimeError(f"gunicorn did not start: {log.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _layers(raw: Any) -> str:
    """The value, plus its base64 and zlib decodings where they apply (RQ stores job data
    zlib-compressed, results base64-encoded and failure reasons base64 of zlib)."""
    data = raw if isinstance(raw, bytes) else str(raw).encode()
    layers = [data]
    try:
        layers.append(base64.b64decode(data, validate=True))
    except ValueError:
        pass
    for layer in list(layers):
        try:
            layers.append(zlib.decompress(layer))
        except zlib.error:
            pass
    return "\n".join(layer.decode("utf-8", "replace") for layer in layers)


def redis_texts(redis: Any) -> Iterator[tuple[str, str]]:
    """(key, text) for every key and every value of every type in Redis, decoded as above."""
    for key in redis.scan_iter(count=1000):
        name = key.decode()
        yield name, name
        kind = redis.type(key).decode()
        values: list[Any] = []
        if kind == "string":
            values = [redis.get(key)]
        elif kind == "hash":
            for field, value in redis.hgetall(key).items():
                values += [field, value]
        elif kind == "list":
            values = redis.lrange(key, 0, -1)
        elif kind == "set":
            values = list(redis.smembers(key))
        elif kind == "zset":
            values = [member for member, _ in redis.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            for _, fields in redis.xrange(key):
                for field, value in fields.items():
                    values += [field, value]
        for value in values:
            yield name, _layers(value)
