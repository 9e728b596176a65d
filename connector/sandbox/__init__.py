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

from connector.sandbox.apaleo import ApaleoSandbox
from connector.sandbox.cloudbeds import CloudbedsSandbox
from connector.sandbox.esp import (
    ActiveCampaignSandbox,
    BrazeSandbox,
    CustomerIoSandbox,
    IntercomSandbox,
    KlaviyoSandbox,
    MailchimpSandbox,
)
from connector.sandbox.glu import GluSandbox
from connector.sandbox.loyaltylion import LoyaltyLionSandbox
from connector.sandbox.mews import MewsSandbox
from connector.sandbox.voucherify import VoucherifySandbox

DEFAULT_KEYS = {
    "glu": "sandbox-glu-key",
    "mews_client_token": "sandbox-mews-client-token",
    "mews_access_token": "sandbox-mews-access-token",
    "apaleo_client_id": "sandbox-apaleo-client",
    "apaleo_client_secret": "sandbox-apaleo-secret",
    "cloudbeds": "sandbox-cloudbeds-key",
    "cloudbeds_access_token": "sandbox-cloudbeds-access-token",
    "klaviyo": "pk_sandbox_klaviyo",
    "mailchimp": "sandbox-mailchimp-key-us1",
    "braze": "sandbox-braze-key",
    "customerio": "sandbox-customerio-key",
    "activecampaign": "sandbox-activecampaign-key",
    "intercom": "sandbox-intercom-token",
    "loyaltylion": "sandbox-loyaltylion-key",
    "voucherify_app_id": "sandbox-voucherify-app",
    "voucherify_app_token": "sandbox-voucherify-token",
}


@dataclass
class Sandboxes:
    """The vendor sandboxes of one server, reachable by name."""

    glu: GluSandbox
    extra: dict[str, Any] = field(default_factory=dict)


def create_sandbox_app(keys: dict[str, str] | None = None) -> tuple[Flask, Sandboxes]:
    """A Flask app serving every vendor sandbox under ``/<vendor>``."""
    keys = {**DEFAULT_KEYS, **(keys or {})}
    sandboxes = Sandboxes(glu=GluSandbox(keys["glu"]))
    app = Flask("connector.sandbox")
    app.register_blueprint(sandboxes.glu.blueprint(), url_prefix="/glu")
    sandboxes.extra["mews"] = MewsSandbox(keys["mews_client_token"], keys["mews_access_token"])
    app.register_blueprint(sandboxes.extra["mews"].blueprint(), url_prefix="/mews")
    sandboxes.extra["apaleo"] = ApaleoSandbox(keys["apaleo_client_id"], keys["apaleo_client_secret"])
    app.register_blueprint(sandboxes.extra["apaleo"].blueprint(), url_prefix="/apaleo")
    sandboxes.extra["cloudbeds"] = CloudbedsSandbox(keys["cloudbeds"], keys["cloudbeds_access_token"])
    app.register_blueprint(sandboxes.extra["cloudbeds"].blueprint(), url_prefix="/cloudbeds")
    sandboxes.extra.update(
        {
            "klaviyo": KlaviyoSandbox(keys["klaviyo"]),
            "mailchimp": MailchimpSandbox(keys["mailchimp"]),
            "braze": BrazeSandbox(keys["braze"]),
            "customerio": CustomerIoSandbox("sandbox-site", keys["customerio"]),
            "activecampaign": ActiveCampaignSandbox("sandbox-actid", keys["activecampaign"]),
            "intercom": IntercomSandbox(keys["intercom"]),
        }
    )
    sandboxes.extra["loyaltylion"] = LoyaltyLionSandbox(keys["loyaltylion"])
    sandboxes.extra["voucherify"] = VoucherifySandbox(keys["voucherify_app_id"], keys["voucherify_app_token"])
    esps = ("klaviyo", "mailchimp", "braze", "customerio", "activecampaign", "intercom")
    for vendor in (*esps, "loyaltylion", "voucherify"):
        app.register_blueprint(sandboxes.extra[vendor].blueprint(), url_prefix=f"/{vendor}")

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
