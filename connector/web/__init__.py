"""The web tier: the app factory and its blueprints (webhooks, health and metrics, admin, the
merchant pages).

It verifies, identifies, dedupes and enqueues; it never calls a vendor (no client is imported here).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin

from connector import logs, redaction
from connector.directory import TenantDirectory
from connector.queue import QUEUE_NAMES, connect, get_queue
from connector.settings import Settings, load_settings
from connector.web import admin, health, merchant, openapi, webhooks  # openapi: issue 15 deploy
from connector.web.errors import register_error_handlers


class _NoSessions(SessionInterface):
    """A session interface that never opens a session (Flask then gives views a null session)."""

    def open_session(self, app: Flask, request: Request) -> None:
        return None

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        return None


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    """Build the web app: settings (validated now), Redis and queues, blueprints."""
    settings = settings or load_settings(**overrides)
    logs.configure_logging("web")  # one format for this process's loggers (gunicorn's: its config)
    # Nothing this process logs may carry a configured secret, in any encoding.
    redaction.install_log_redaction(redaction.configured_secrets(settings))
    app = Flask(__name__)
    app.config["SECRET_KEY"] = settings.secret_key.get_secret_value()
    # Nothing here uses cookie sessions (admin is HTTP Basic): skip loading and saving one per webhook.
    app.session_interface = _NoSessions()
    # The webhook view enforces settings.max_body_bytes itself (also for chunked bodies).
    redis = connect(settings.redis_url, for_web=True)
    app.extensions["connector.settings"] = settings
    app.extensions["connector.redis"] = redis
    # File tenants plus Shopify installations (a wrong CONNECTOR_SECRET_KEY stops start-up here).
    app.extensions["connector.tenants"] = TenantDirectory(settings, redis)
    app.extensions["connector.queues"] = {name: get_queue(redis, name) for name in QUEUE_NAMES}
    register_error_handlers(app)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(merchant.bp)  # the merchant pages (/app/…)
    # --- Shopify app: the app webhook URL (app/uninstalled, compliance topics, orders) ---
    if settings.shopify_app_enabled:
        from connector.web import shopify_webhooks

        app.register_blueprint(shopify_webhooks.bp)
    # --- end Shopify app webhook URL ---
    # -- the Shopify app's install flow and settings page (issue 13) --
    if settings.shopify_app_enabled:
        from connector.web import shopify_app  # only with the app enabled

        app.register_blueprint(shopify_app.bp)
    # -- end of the Shopify app's install flow --
    # -- issue 15 deploy: the OpenAPI document at /openapi.json --
    app.register_blueprint(openapi.bp)
    # -- end issue 15 deploy --
    admin.init_admin(
        app,
        settings.redis_url,
        settings.admin_password.get_secret_value() if settings.admin_password else None,
    )
    # -- issue 16 intake: webhook POSTs served ahead of Flask's request machinery (same answers) --
    app.wsgi_app = webhooks.IntakeFastPath(app, app.wsgi_app)  # type: ignore[method-assign]
    # -- end issue 16 intake --
    return app
