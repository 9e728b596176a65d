"""Contract-faithful local stand-ins for the vendors' APIs, all served by one server.

Each vendor lives under its own path prefix (``/glu``…), so a tenant points ``base_url`` at
``http://127.0.0.1:8100/glu``. ``connector sandbox`` runs it; tests start it in a thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, jsonify
from werkzeug.serving import BaseWSGIServer, make_server

from connector.apps.registry import APPS
from connector.esps.registry import ESPS
from connector.parts import Part
from connector.platforms.registry import PLATFORMS
from connector.pms.registry import PMS_APIS


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


@dataclass
class Sandboxes:
    """The vendor sandboxes of one server, reachable by name."""

    glu: Any  # connector.vendors.glu.sandbox.GluSandbox
    extra: dict[str, Any] = field(default_factory=dict)


def create_sandbox_app(keys: dict[str, str] | None = None) -> tuple[Flask, Sandboxes]:
    """A Flask app serving every registered vendor sandbox under ``/<vendor>``."""
    keys = {**DEFAULT_KEYS, **(keys or {})}
    built = {name: part.load().create(keys) for name, part in sandbox_parts().items()}
    sandboxes = Sandboxes(glu=built.pop("glu"), extra=built)
    app = Flask("connector.sandbox")
    app.register_blueprint(sandboxes.glu.blueprint(), url_prefix="/glu")
    for vendor, sandbox in sandboxes.extra.items():
        app.register_blueprint(sandbox.blueprint(), url_prefix=f"/{vendor}")

    @app.get("/")
    def index() -> Any:
        vendors = {"glu": "/glu", **{name: f"/{name}" for name in sandboxes.extra}}
        return jsonify({"vendors": vendors, "state": "/<vendor>/_sandbox/state"})

    return app, sandboxes


class SandboxServer:
    """The sandbox app on a real HTTP socket in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, keys: dict[str, str] | None = None) -> None:
        self.app, self.sandboxes = create_sandbox_app(keys)
        self.server: BaseWSGIServer = make_server(host, port, self.app, threaded=True)
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
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
