"""Contract-faithful local stand-ins for the vendors' APIs, all served by one server.

Each vendor lives under its own path prefix (``/glu``…), so a tenant points ``base_url`` at
``http://127.0.0.1:8100/glu``. ``connector sandbox`` runs it; tests start it in a thread.

The server speaks keep-alive HTTP/1.1 as the real vendors do: every answer carries its
``Content-Length`` (or is chunked) and the connection stays open for the client's next request,
until the client closes it, it idles for :data:`IDLE_TIMEOUT` seconds, or a ``drop`` /
``drop_after`` fault closes it (:mod:`connector.sandbox.base`). ``GET /_sandbox/connections``
says how many TCP connections the server accepted and which connection and credential each
request came with (:class:`ConnectionLog`), so a test can count connection reuse;
``GET /_sandbox/cookie`` answers with a ``Set-Cookie`` (what a client keeps of it).
"""

from __future__ import annotations

import hashlib
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import ClientDisconnected
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

from connector.apps.registry import APPS
from connector.esps.registry import ESPS
from connector.parts import Part
from connector.platforms.registry import PLATFORMS
from connector.pms.registry import PMS_APIS

IDLE_TIMEOUT = 60.0
"""Seconds an idle keep-alive connection stays open (vendors' servers close idle ones too)."""

CREDENTIAL_HEADERS = ("Authorization", "x-api-key", "X-App-Token", "Api-Token", "X-Auth-Token")
"""Headers that carry a client's credential; the connection log keeps a fingerprint of the first one sent."""

LOGGED_REQUESTS = 5000
"""How many requests the connection log keeps (the newest)."""


def sandbox_parts() -> dict[str, Part]:
    """Every registered vendor sandbox, by vendor (the registries of every role, in one place)."""
    parts: dict[str, Part] = {}
    for registry in (PLATFORMS, PMS_APIS, ESPS, APPS):
        for name, registration in registry.items():
            parts[name] = registration.sandbox
    return parts


def _default_keys() -> dict[str, str]:
    keys: dict[str, str] = {}
    for part in sandbox_parts().values():
        keys.update(part.load().KEYS)
    return keys


DEFAULT_KEYS = _default_keys()
"""The credentials every sandbox accepts by default (each vendor sandbox's ``KEYS``)."""


def fingerprint(credential: str) -> str:
    """The first 16 hex digits of the SHA-256 of a credential: which key a request carried,
    without the sandbox's log holding the key itself."""
    return hashlib.sha256(credential.encode()).hexdigest()[:16]


class ConnectionLog:
    """The TCP connections a sandbox server accepted, and the requests each carried."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._numbers: dict[int, int] = {}  # id(socket) of each open connection -> its number
        self._open: dict[int, socket.socket] = {}
        self.accepted = 0
        self._requests: deque[dict[str, Any]] = deque(maxlen=LOGGED_REQUESTS)
        self.requests = 0

    def opened(self, sock: socket.socket) -> None:
        """Count a connection the server accepted."""
        with self._lock:
            self.accepted += 1
            self._numbers[id(sock)] = self.accepted
            self._open[id(sock)] = sock

    def closed(self, sock: socket.socket) -> None:
        """Forget a connection the server is done with."""
        with self._lock:
            self._numbers.pop(id(sock), None)
            self._open.pop(id(sock), None)

    def note_request(self, sock: Any, method: str, path: str, credential: str | None) -> None:
        """Keep which connection a request came on, and a fingerprint of its credential."""
        with self._lock:
            self.requests += 1
            self._requests.append(
                {
                    "connection": self._numbers.get(id(sock)),
                    "method": method,
                    "path": path,
                    "credential": fingerprint(credential) if credential else None,
                }
            )

    def open_sockets(self) -> list[socket.socket]:
        """The server's side of every open connection."""
        with self._lock:
            return list(self._open.values())

    def close_all(self) -> None:
        """Shut every open connection (the server stops: their threads must end)."""
        for sock in self.open_sockets():
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def snapshot(self) -> dict[str, Any]:
        """``{"accepted", "open", "requests", "log": [{"connection", "method", "path", "credential"}]}``."""
        with self._lock:
            return {
                "accepted": self.accepted,
                "open": len(self._open),
                "requests": self.requests,
                "log": list(self._requests),
            }


@dataclass
class Sandboxes:
    """The vendor sandboxes of one server, reachable by name, and its connection log."""

    glu: Any  # connector.vendors.glu.sandbox.GluSandbox
    extra: dict[str, Any] = field(default_factory=dict)
    connections: ConnectionLog = field(default_factory=ConnectionLog)


def create_sandbox_app(keys: dict[str, str] | None = None) -> tuple[Flask, Sandboxes]:
    """A Flask app serving every registered vendor sandbox under ``/<vendor>``, and
    ``GET /_sandbox/connections`` (filled in when :class:`SandboxServer` serves the app)."""
    keys = {**DEFAULT_KEYS, **(keys or {})}
    built = {name: part.load().create(keys) for name, part in sandbox_parts().items()}
    sandboxes = Sandboxes(glu=built.pop("glu"), extra=built)
    app = Flask("connector.sandbox")
    app.register_blueprint(sandboxes.glu.blueprint(), url_prefix="/glu")
    for vendor, sandbox in sandboxes.extra.items():
        app.register_blueprint(sandbox.blueprint(), url_prefix=f"/{vendor}")

    @app.before_request
    def _log_connection() -> None:
        credential = next((request.headers[h] for h in CREDENTIAL_HEADERS if h in request.headers), None)
        sandboxes.connections.note_request(
            request.environ.get("werkzeug.socket"), request.method, request.path, credential
        )

    @app.get("/")
    def index() -> Any:
        vendors = {"glu": "/glu", **{name: f"/{name}" for name in sandboxes.extra}}
        return jsonify(
            {"vendors": vendors, "state": "/<vendor>/_sandbox/state", "connections": "/_sandbox/connections"}
        )

    @app.get("/_sandbox/connections")
    def connections() -> Any:
        return jsonify(sandboxes.connections.snapshot())

    @app.get("/_sandbox/cookie")
    def cookie() -> Any:
        # As a vendor's load balancer may: a cookie the connector must not carry to another tenant.
        answer = jsonify({"cookie": "sandbox-session"})
        answer.set_cookie("sandbox-session", "tenant-a", path="/")
        return answer

    return app, sandboxes


class KeepAliveRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler, keeping the connection open between requests (HTTP/1.1).

    werkzeug's own handler closes every connection: after each answer it drains whatever the
    socket still holds, which on a kept-alive connection would swallow the client's next
    request. Here the application and that drain see only this request's body (its
    ``Content-Length``), so the next request stays in the stream for the next round.
    """

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT

    def run_wsgi(self) -> None:
        """Serve one request; keep the connection unless the client, the body or a fault ends it."""
        length = self.headers.get("Content-Length")
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower() or (
            length is not None and not length.strip().isdigit()
        ):
            self.close_connection = True  # where this body ends is not known here: answer, then close
            super().run_wsgi()
            return
        stream = self.rfile
        body = LimitedStream(stream, int(length or 0))  # type: ignore[arg-type]
        self.rfile = body  # type: ignore[assignment]
        try:
            super().run_wsgi()
            if self.connection.fileno() < 0:  # a drop fault closed the socket
                self.close_connection = True
            elif not self.close_connection:
                # An answer given before the body was read (a fault, a refused key) leaves the
                # body in the stream, where the next request line would be looked for.
                body.exhaust()
        except (ClientDisconnected, OSError):
            self.close_connection = True
        finally:
            self.rfile = stream

    def send_header(self, keyword: str, value: str) -> None:
        """Every header but werkzeug's ``Connection: close`` on a connection that stays open."""
        if keyword.lower() == "connection" and value.lower() == "close" and not self.close_connection:
            return
        super().send_header(keyword, value)


class SandboxWSGIServer(ThreadedWSGIServer):
    """werkzeug's threaded server (a thread per connection), counting its connections."""

    def __init__(self, host: str, port: int, app: Flask, connections: ConnectionLog) -> None:
        super().__init__(host, port, app, handler=KeepAliveRequestHandler)
        self.connections = connections

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept a connection and count it."""
        sock, address = super().get_request()
        # An answer goes out as two writes (headers, then body): with Nagle's algorithm on a kept
        # connection the body would wait for the client's delayed ACK (~40 ms) every time.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connections.opened(sock)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        """The connection's thread is done with it."""
        self.connections.closed(request)
        super().shutdown_request(request)


class SandboxServer:
    """The sandbox app on a real HTTP socket in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, keys: dict[str, str] | None = None) -> None:
        self.app, self.sandboxes = create_sandbox_app(keys)
        self.server = SandboxWSGIServer(host, port, self.app, self.sandboxes.connections)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8100``."""
        return f"http://{self.server.host}:{self.server.port}"

    def start(self) -> SandboxServer:
        """Serve in the background."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: stop accepting, close the kept-alive connections, wait for their threads."""
        self.server.shutdown()
        self.sandboxes.connections.close_all()
        self.server.server_close()
