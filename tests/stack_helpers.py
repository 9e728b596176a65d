"""Shared pieces of the tests that look at the whole stack: gunicorn with the project's config, and
every text Redis holds (for the scans that must find no secret and no erased address)."""

from __future__ import annotations

import base64
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.__main__ import answers, process

ROOT = Path(__file__).resolve().parents[1]
GUNICORN_CONFIG = ROOT / "config" / "gunicorn.conf.py"


@contextmanager
def gunicorn_server(env: dict[str, str]) -> Iterator[None]:
    """``gunicorn -c config/gunicorn.conf.py wsgi:app`` with ``env`` (which names the port in
    ``CONNECTOR_BIND``), once it answers ``/healthz``; stopped on the way out (the bench's own
    server runner, so the tests start gunicorn exactly as ``make bench`` does)."""
    argv = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG), "wsgi:app"]
    with process(argv, env, answers(f"http://{env['CONNECTOR_BIND']}/healthz"), "test gunicorn"):
        yield


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
