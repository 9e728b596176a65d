"""The OpenAPI 3.1 document of the connector's HTTP endpoints, served at ``GET /openapi.json``.

Written by hand from the views (webhooks, health, metrics, admin, the Shopify app, the merchant
pages) and kept honest by tests/test_openapi.py: every route of the app (the Shopify app
enabled) must have its method and path here, and real answers are checked against the schemas.
rq-dashboard's routes are one entry (:data:`DASHBOARD_PREFIX`), the static files one entry each
(:data:`STATIC_PREFIXES`): the test covers every route under those prefixes with them.

The merchant pages (``/app/…``) are HTML for people, not an API: they are documented as pages
(``text/html``) and their forms' POSTs (``application/x-www-form-urlencoded``, each with the
page's ``csrf_token``). A refusal is a short HTML page, or the JSON error body when the client
sends ``Accept: application/json``.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Blueprint, Response, jsonify

bp = Blueprint("openapi", __name__)

OPENAPI_VERSION = "3.1.0"
DASHBOARD_PREFIX = "/admin/rq"
"""rq-dashboard: one documented entry covers every route under this prefix."""
STATIC_PREFIXES = ("/static", "/app/static")
"""Static files (CSS of the merchant pages, Flask's default static route): one entry each."""

Json = dict[str, Any]


def _ref(kind: str, name: str) -> Json:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(schema: Json, description: str, headers: Json | None = None) -> Json:
    answer: Json = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


def _error(description: str, *codes: str) -> Json:
    """An answer with the error body; ``codes`` are the ``error.code`` values it may carry."""
    schema: Json = _ref("schemas", "Error")
    if codes:
        schema = {
            "allOf": [
                _ref("schemas", "Error"),
                {"properties": {"error": {"properties": {"code": {"enum": list(codes)}}}}},
            ]
        }
    return _json(schema, description)


def _html(description: str) -> Json:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _redirect(description: str) -> Json:
    return {"description": description, "headers": {"Location": {"schema": {"type": "string"}}}}


def _path_params(*names: str) -> list[Json]:
    return [_ref("parameters", name) for name in names]


# ----------------------------------------------------------------------------------- webhooks

_WEBHOOK_ANSWERS: Json = {
    "200": _json(
        {"oneOf": [_ref("schemas", "Duplicate"), _ref("schemas", "Ignored")]},
        "A duplicate of an accepted delivery (same job id), or a valid webhook the connector ignores (with why)",
    ),
    "202": _json(_ref("schemas", "Accepted"), "Verified and durably queued; `job` is the ingest job id (the trace id)"),
    "400": _ref("responses", "BadRequest"),
    "401": _ref("responses", "Unauthorized"),
    "404": _ref("responses", "NotFound"),
    "413": _ref("responses", "PayloadTooLarge"),
    "415": _ref("responses", "UnsupportedMediaType"),
    "503": _ref("responses", "QueueUnavailable"),
}

_WEBHOOK_BODY: Json = {
    "required": True,
    "description": (
        "The vendor's webhook, verified on its raw bytes (HMAC header, URL token or body secret, per "
        "source). UTF-8 JSON for every source but those noted in the README (content type checked: 415)."
    ),
    "content": {"application/json": {"schema": {}}, "*/*": {"schema": {}}},
}


def _webhook(summary: str, *params: str) -> Json:
    return {
        "parameters": _path_params(*params),
        "post": {
            "tags": ["webhooks"],
            "summary": summary,
            "operationId": "receive_" + "_".join(params),
            "requestBody": _WEBHOOK_BODY,
            "responses": _WEBHOOK_ANSWERS,
        },
        "get": {
            "tags": ["webhooks"],
            "summary": "A vendor's validation handshake (Meraki validator, Purple), where the source has one",
            "operationId": "handshake_" + "_".join(params),
            "responses": {
                "200": {
                    "description": "The handshake answer the vendor expects (its own format)",
                    "content": {"text/plain": {"schema": {"type": "string"}}, "application/json": {"schema": {}}},
                },
                "401": _ref("responses", "Unauthorized"),
                "404": _ref("responses", "NotFound"),
                "405": _ref("responses", "MethodNotAllowed"),
                "503": _ref("responses", "QueueUnavailable"),
            },
        },
    }


def _paths_webhooks() -> Json:
    mews = _webhook("The connector's one Mews General Webhook URL (routed by `EnterpriseId`)", "token")
    mews["post"]["operationId"], mews["get"]["operationId"] = "receive_mews", "handshake_mews"
    mews["get"]["summary"] = "Not a handshake: Mews only POSTs (405; 404 when the shared URL is not configured)"
    mews["get"]["responses"] = {"404": _ref("responses", "NotFound"), "405": _ref("responses", "MethodNotAllowed")}
    return {
        "/webhooks/{tenant}/{source}": _webhook("Every inbound webhook of a tenant's source", "tenant", "source"),
        "/webhooks/{tenant}/{source}/{token}": _webhook(
            "Sources authenticated by a URL token (Mews, Apaleo, Cloudbeds, Purple)", "tenant", "source", "token"
        ),
        "/webhooks/_mews/{token}": mews,
    }


# --------------------------------------------------------------------------- health and metrics


def _paths_health() -> Json:
    return {
        "/healthz": {
            "get": {
                "tags": ["health"],
                "summary": "The process is up (Redis is not consulted)",
                "operationId": "healthz",
                "responses": {"200": _json(_ref("schemas", "Health"), "Up")},
            }
        },
        "/readyz": {
            "get": {
                "tags": ["health"],
                "summary": "Redis answers; `durability` says whether it keeps every acknowledged webhook",
                "operationId": "readyz",
                "responses": {
                    "200": _json(_ref("schemas", "Ready"), "Ready"),
                    "503": _ref("responses", "RedisUnavailable"),
                },
            }
        },
        "/metrics": {
            "get": {
                "tags": ["health"],
                "summary": "Prometheus metrics (text exposition format)",
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "The metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "503": _ref("responses", "RedisUnavailable"),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "tags": ["health"],
                "summary": "This document",
                "operationId": "openapi",
                "responses": {"200": _json({"type": "object"}, "The OpenAPI 3.1 document")},
            }
        },
    }


# -------------------------------------------------------------------------------------- admin

_ADMIN_REFUSALS: Json = {
    "401": _error("The admin password is required (HTTP Basic, any user name)", "unauthorized"),
    "403": _error("A cross-site request (Origin, Referer or Sec-Fetch-Site): refused", "cross_origin"),
    "404": _error("No `CONNECTOR_ADMIN_PASSWORD` is set: the admin pages are off", "admin_disabled"),
}


def _paths_admin() -> Json:
    return {
        f"{DASHBOARD_PREFIX}/": {
            "get": {
                "tags": ["admin"],
                "summary": "rq-dashboard: queues, jobs, workers; requeue and delete (every route under /admin/rq/)",
                "description": (
                    "rq-dashboard's pages (HTML) and the JSON they poll live under this prefix; this entry "
                    "stands for all of them. Actions that change state (requeue, requeue all, delete, empty, "
                    "compact) are POST only (GET and HEAD answer 405)."
                ),
                "operationId": "admin_dashboard",
                "security": [{"adminBasic": []}],
                "responses": {"200": _html("The dashboard"), **_ADMIN_REFUSALS},
            }
        },
        "/admin/trace/{term}": {
            "parameters": [
                {
                    "name": "term",
                    "in": "path",
                    "required": True,
                    "description": (
                        "A trace id (the ingest job id), a sender's delivery id, a job id, an order or "
                        "reservation id, or an email (hashed before the lookup); may contain '/'"
                    ),
                    "schema": {"type": "string"},
                },
                {
                    "name": "tenant",
                    "in": "query",
                    "required": False,
                    "description": "Only this tenant's traces (an order number is per shop)",
                    "schema": {"type": "string"},
                },
            ],
            "get": {
                "tags": ["admin"],
                "summary": "One webhook's chain: received, translation, every delivery and relay attempt, final state",
                "description": (
                    "The view `connector trace <id>` prints, for support staff, linked from the dashboard's "
                    "job pages: HTML, or JSON with `Accept: application/json` (the most recent match, "
                    "and every match's trace id in `matches`)."
                ),
                "operationId": "admin_trace",
                "security": [{"adminBasic": []}],
                "responses": {
                    "200": {
                        "description": "The trace",
                        "content": {
                            "text/html": {"schema": {"type": "string"}},
                            "application/json": {"schema": _ref("schemas", "Trace")},
                        },
                    },
                    **_ADMIN_REFUSALS,
                    "404": _error(
                        "No trace found for the term, or the admin pages are off (no CONNECTOR_ADMIN_PASSWORD)",
                        "no_trace",
                        "admin_disabled",
                    ),
                },
            },
        },
    }


# --------------------------------------------------------------------------------- Shopify app

_SHOPIFY_QUERY: list[Json] = [
    {"name": name, "in": "query", "schema": {"type": "string"}, "description": description}
    for name, description in (
        ("shop", "The shop's myshopify.com domain"),
        ("hmac", "Shopify's signature of the query string (checked in constant time)"),
        ("timestamp", "When Shopify signed the request (a stale one is refused)"),
        ("host", "The admin host Shopify passes to embedded apps"),
    )
]


def _shopify_refusal(description: str) -> Json:
    return {
        "description": description,
        "content": {
            "text/html": {"schema": {"type": "string"}},
            "application/json": {"schema": _ref("schemas", "Error")},
        },
    }


def _paths_shopify() -> Json:
    return {
        "/shopify/install": {
            "get": {
                "tags": ["shopify"],
                "summary": "The App URL: a signed request from Shopify starts the OAuth install (or opens the pages)",
                "operationId": "shopify_install",
                "parameters": _SHOPIFY_QUERY,
                "responses": {
                    "302": _redirect("To Shopify's authorization page, or to the merchant pages of an installed shop"),
                    "400": _shopify_refusal("A missing or malformed shop or parameter"),
                    "401": _shopify_refusal("The signature does not verify, or it is stale"),
                },
            }
        },
        "/shopify/callback": {
            "get": {
                "tags": ["shopify"],
                "summary": "OAuth redirect: verify, exchange the code, subscribe the webhooks, store the installation",
                "operationId": "shopify_callback",
                "parameters": [
                    *_SHOPIFY_QUERY,
                    {"name": "code", "in": "query", "schema": {"type": "string"}, "description": "The grant"},
                    {"name": "state", "in": "query", "schema": {"type": "string"}, "description": "Our signed nonce"},
                ],
                "responses": {
                    "302": _redirect("To the shop's merchant pages (a signed-in session)"),
                    "400": _shopify_refusal("A used or expired state, no code, a code Shopify refused"),
                    "401": _shopify_refusal("The signature does not verify, or the state belongs to another shop"),
                    "409": _shopify_refusal("The webhook subscriptions could not be created"),
                    "503": _shopify_refusal("Redis or Shopify unavailable: open the app again"),
                },
            }
        },
        "/shopify/webhooks": {
            "post": {
                "tags": ["shopify", "webhooks"],
                "summary": "The app's webhook URL: orders, app/uninstalled, compliance topics (by X-Shopify-Topic)",
                "operationId": "shopify_app_webhook",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
                "responses": {
                    **_WEBHOOK_ANSWERS,
                    "200": _json(
                        {
                            "oneOf": [
                                _ref("schemas", "Accepted"),
                                _ref("schemas", "Duplicate"),
                                _ref("schemas", "Ignored"),
                                _ref("schemas", "Uninstalled"),
                            ]
                        },
                        "A compliance request queued (`accepted`, 200) or repeated, a duplicate, an ignored "
                        "topic, or the uninstall recorded",
                    ),
                    "401": _error(
                        "The HMAC does not verify, or the shop has not installed the app",
                        "invalid_signature",
                        "not_installed",
                    ),
                },
            }
        },
        "/shopify/settings": {
            "get": {
                "tags": ["shopify"],
                "summary": "The app's old settings page: moved to the merchant pages",
                "operationId": "shopify_settings",
                "responses": {"301": _redirect("To /app/")},
            }
        },
    }


# ------------------------------------------------------------------------------ merchant pages

_PAGE_REFUSALS: Json = {
    "403": _html("Another tenant's session, a read-only session, or (on a POST) a missing or stale csrf_token"),
    "404": _html("No such tenant or source, or the pages are off (no stable CONNECTOR_SECRET_KEY)"),
    "503": _html("Redis unavailable (with Retry-After)"),
}


def _page(summary: str, operation_id: str, *params: str) -> Json:
    return {
        "tags": ["merchant pages"],
        "summary": summary,
        "operationId": operation_id,
        "parameters": _path_params(*params),
        "security": [{"merchantSession": []}],
        "responses": {
            "200": _html("The page"),
            "303": _redirect("Not signed in: to the sign-in page"),
            **_PAGE_REFUSALS,
        },
    }


def _form(summary: str, operation_id: str, fields: dict[str, str], *params: str, session: bool = True) -> Json:
    properties: Json = {"csrf_token": {"type": "string", "description": "The token of the page the form is on"}}
    properties.update({name: {"type": "string", "description": text} for name, text in fields.items()})
    operation: Json = {
        "tags": ["merchant pages"],
        "summary": summary,
        "operationId": operation_id,
        "parameters": _path_params(*params),
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": properties, "required": ["csrf_token"]}
                }
            },
        },
        "responses": {
            "200": _html("The page again, with what the form needs corrected, or a connection test's answer"),
            "303": _redirect("Done: to the page that shows the result (POST-redirect-GET)"),
            "400": _html("A field that is not valid"),
            "409": _html("A conflict (e.g. a tenant of that name exists, a rotation not started)"),
            **_PAGE_REFUSALS,
        },
    }
    if session:
        operation["security"] = [{"merchantSession": []}]
    return operation


_FIELDS = "The section's settings: one field per setting of the chosen platform or source (see the page)"


def _paths_merchant() -> Json:
    t, tn = ("tenant",), ("tenant", "name")
    return {
        "/app/": {"get": _page("Home: the tenants list (support staff) or the signed-in tenant", "app_home")},
        "/app/sign-in": {
            "get": {
                **_page("Sign in with a tenant's sign-in link (token in the query)", "app_sign_in_page"),
                "security": [],
            },
            "post": _form("Sign in", "app_sign_in", {"token": "The sign-in link's token"}, session=False),
        },
        "/app/sign-out": {"post": _form("Sign out", "app_sign_out", {})},
        "/app/admin": {
            "get": {**_page("Support staff sign-in", "app_admin_sign_in_page"), "security": []},
            "post": {
                **_form(
                    "Support staff sign-in", "app_admin_sign_in", {"password": "The admin password"}, session=False
                ),
            },
        },
        "/app/tenants": {
            "post": _form(
                "Create a tenant (support staff)",
                "app_create_tenant",
                {"name": "The tenant's name (URL-safe)", "timezone": "An IANA time zone"},
            )
        },
        "/app/{tenant}/": {"get": _page("The tenant's overview", "app_overview", *t)},
        "/app/{tenant}/activity": {
            "get": _page("Recent webhooks and deliveries, with their attempts", "app_activity", *t)
        },
        "/app/{tenant}/activity/retry": {
            "post": _form("Retry a failed delivery", "app_retry", {"job": "The failed job's id"}, *t)
        },
        "/app/{tenant}/loyalty": {
            "get": _page("The loyalty platform section", "app_loyalty", *t),
            "post": _form("Save the loyalty platform settings", "app_save_loyalty", {"platform": _FIELDS}, *t),
        },
        "/app/{tenant}/loyalty/test": {
            "post": _form(
                "Test the loyalty platform connection (a job; the page shows its answer)", "app_test_loyalty", {}, *t
            )
        },
        "/app/{tenant}/email": {
            "get": _page("The email provider section", "app_email", *t),
            "post": _form("Save the email provider settings", "app_save_email", {"esp": _FIELDS}, *t),
        },
        "/app/{tenant}/email/remove": {"post": _form("Remove the email provider", "app_remove_email", {}, *t)},
        "/app/{tenant}/email/test": {
            "post": _form(
                "Test the email provider connection (a job; the page shows its answer)", "app_test_email", {}, *t
            )
        },
        "/app/{tenant}/sources": {
            "get": _page("The tenant's sources", "app_sources", *t),
            "post": _form("Add a source", "app_add_source", {"source": "The kind of source to add"}, *t),
        },
        "/app/{tenant}/sources/new": {"get": _page("Choose a source to add", "app_new_source", *t)},
        "/app/{tenant}/sources/{name}": {
            "get": _page("One source: its webhook URL, settings, secret rotation", "app_source", *tn),
            "post": _form("Save a source's settings", "app_edit_source", {"source": _FIELDS}, *tn),
        },
        "/app/{tenant}/sources/{name}/remove": {"post": _form("Remove a source", "app_remove_source", {}, *tn)},
        "/app/{tenant}/sources/{name}/rotate": {
            "post": _form("Start a secret rotation (old and new secret both verify)", "app_rotate_source", {}, *tn)
        },
        "/app/{tenant}/sources/{name}/rotate/finish": {
            "post": _form("Finish a secret rotation (only the new secret verifies)", "app_finish_rotation", {}, *tn)
        },
        **{
            f"{prefix}/{{filename}}": {
                "parameters": [{"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}],
                "get": {
                    "tags": ["static"],
                    "summary": f"Static files under {prefix}/ (CSS, images)",
                    "operationId": "static" + prefix.replace("/", "_"),
                    "responses": {"200": {"description": "The file"}, "404": {"description": "No such file"}},
                },
            }
            for prefix in STATIC_PREFIXES
        },
    }


# --------------------------------------------------------------------------------- components


def _components() -> Json:
    def param(name: str, description: str) -> Json:
        return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}

    def answer(status: str, description: str, *, job: bool = True) -> Json:
        properties: Json = {"status": {"const": status}}
        if job:
            properties["job"] = {"type": "string", "description": "The ingest job id, which is the trace id"}
        return {"type": "object", "description": description, "required": list(properties), "properties": properties}

    retry_after = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "string"}}}
    return {
        "schemas": {
            "Error": {
                "type": "object",
                "description": "Every error answer's body",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string", "description": "Stable, machine-readable"},
                            "message": {"type": "string", "description": "What happened and what to do, for a person"},
                        },
                    }
                },
            },
            "Accepted": answer("accepted", "Verified and durably queued"),
            "Duplicate": answer("duplicate", "This delivery id was already accepted (the same job)"),
            "Ignored": {
                "type": "object",
                "description": "Valid but not for the connector (topic not a trigger, event not enabled, ...)",
                "required": ["status", "reason"],
                "properties": {"status": {"const": "ignored"}, "reason": {"type": "string"}},
            },
            "Trace": {
                "type": "object",
                "description": "The chain `connector trace --json` prints (see connector/trace.py), plus `matches`",
                "required": ["trace", "tenant", "received", "translation", "jobs", "state", "matches"],
                "properties": {
                    "trace": {"type": "string", "description": "The trace id (the ingest job id)"},
                    "tenant": {"type": ["string", "null"]},
                    "received": {
                        "type": ["object", "null"],
                        "description": "at, source, event_type, delivery_id, answer",
                    },
                    "translation": {
                        "type": ["object", "null"],
                        "description": "status, reason, deliveries, relays, erasure",
                    },
                    "jobs": {
                        "type": "array",
                        "description": "Each job: job, kind, type, destination, status, state, attempts",
                        "items": {"type": "object", "properties": {"attempts": {"type": "array"}}},
                    },
                    "state": {"enum": ["done", "failed", "in progress"]},
                    "matches": {"type": "array", "items": {"type": "string"}},
                },
            },
            "Uninstalled": answer("uninstalled", "The shop's uninstall is recorded", job=False),
            "Health": answer("ok", "The process is up", job=False),
            "Ready": {
                "type": "object",
                "required": ["status", "durability"],
                "properties": {
                    "status": {"const": "ready"},
                    "durability": {
                        "type": "object",
                        "description": "Whether Redis keeps every acknowledged webhook (appendonly, appendfsync)",
                    },
                },
            },
        },
        "parameters": {
            "tenant": param("tenant", "The tenant's name"),
            "source": param("source", "The source's name in the tenant (e.g. shopify, mews, hotspotsystem)"),
            "token": param("token", "The URL token that authenticates the sender"),
            "name": param("name", "The source's name in the tenant"),
        },
        "responses": {
            "BadRequest": _error(
                "Not UTF-8 JSON, nested deeper than 64 levels, or an identity field missing or of the wrong type",
                "invalid_json",
                "too_deep",
                "invalid_payload",
            ),
            "Unauthorized": _error("Missing or wrong signature, token or timestamp", "invalid_signature"),
            "NotFound": _error("No such tenant, source or URL", "unknown_tenant", "unknown_source", "not_found"),
            "MethodNotAllowed": _error("GET where the source has no handshake", "method_not_allowed"),
            "PayloadTooLarge": _error("Over CONNECTOR_MAX_BODY_BYTES (checked before any HMAC)", "payload_too_large"),
            "UnsupportedMediaType": _error("Not the content type the vendor sends", "unsupported_media_type"),
            "QueueUnavailable": {
                **_error(
                    "Redis unreachable (or no primary during a failover): nothing was acknowledged", "queue_unavailable"
                ),
                "headers": retry_after,
            },
            "RedisUnavailable": {
                **_error("Redis is not reachable", "redis_unavailable"),
                "headers": retry_after,
            },
        },
        "securitySchemes": {
            "adminBasic": {
                "type": "http",
                "scheme": "basic",
                "description": "Any user name, the CONNECTOR_ADMIN_PASSWORD (no password set: the admin pages are off)",
            },
            "merchantSession": {
                "type": "apiKey",
                "in": "cookie",
                "name": "connector_merchant",
                "description": "The signed session cookie set by a sign-in (path /app)",
            },
        },
    }


def _version() -> str:
    try:
        return version("loyalty-connector")
    except PackageNotFoundError:  # run from a checkout that was not installed
        return "0.0.0"


@cache
def document() -> Json:
    """The OpenAPI 3.1 document (built once per process)."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Loyalty connector",
            "version": _version(),
            "description": (
                "Webhooks in (verify, identify, dedupe, enqueue), health and metrics, support tools, the "
                'Shopify app and the merchant pages. Every error body is `{"error": {"code", "message"}}`; '
                "no input produces a 5xx other than 503 (Redis unavailable, with Retry-After)."
            ),
        },
        "tags": [{"name": name} for name in ("webhooks", "health", "admin", "shopify", "merchant pages", "static")],
        "paths": {
            **_paths_webhooks(),
            **_paths_health(),
            **_paths_admin(),
            **_paths_shopify(),
            **_paths_merchant(),
        },
        "components": _components(),
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """``GET /openapi.json``: this document."""
    return jsonify(document())
