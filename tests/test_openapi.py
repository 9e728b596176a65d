"""The OpenAPI document (connector/web/openapi.py) against the app's real routes and answers.

Every route of the app, the Shopify app enabled, must be documented (method and path, Flask's
``<converter:name>`` read as ``{name}``); rq-dashboard's routes and the static files are covered by
one documented entry per prefix, listed here. Real answers (202, 200 duplicate, 401, 404, 415,
health, the admin guard, a merchant page) must have a documented status, content type and body.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from conftest import load_fixture, shopify_headers, tenants_toml
from flask import Flask
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_spec

from connector.sandbox.server import DEFAULT_KEYS
from connector.web import create_app
from connector.web.openapi import DASHBOARD_PREFIX, document

# Routes under these prefixes are covered by the one documented path each maps to.
PREFIX_ENTRIES = {
    f"{DASHBOARD_PREFIX}/": f"{DASHBOARD_PREFIX}/",  # rq-dashboard: pages, JSON, POST actions
    "/static/": "/static/{filename}",  # Flask's default static route
    "/app/static/": "/app/static/{filename}",  # the merchant pages' CSS
}
IGNORED_METHODS = {"HEAD", "OPTIONS"}  # Flask adds them to every route


def openapi_path(rule: str) -> str:
    """``/webhooks/<tenant>/<int:n>`` → ``/webhooks/{tenant}/{n}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def app_operations(app: Flask) -> set[tuple[str, str]]:
    """(METHOD, OpenAPI path) of every route of ``app``."""
    return {
        (method, openapi_path(rule.rule))
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - IGNORED_METHODS
    }


def undocumented(app: Flask, doc: dict[str, Any]) -> list[str]:
    """``METHOD path`` of every route the document does not cover, sorted."""
    missing = []
    for method, path in app_operations(app):
        covering = next((entry for prefix, entry in PREFIX_ENTRIES.items() if path.startswith(prefix)), None)
        if covering is not None:
            if covering not in doc["paths"]:
                missing.append(f"{method} {path} (its prefix entry {covering} is missing)")
            continue
        if method.lower() not in doc["paths"].get(path, {}):
            missing.append(f"{method} {path}")
    return sorted(missing)


@pytest.fixture
def app(env, sandbox) -> Flask:
    """The app with the Shopify app on (so its routes exist) and the merchant pages on."""
    settings = env(
        tenants_toml(sandbox.url),
        SHOPIFY_API_KEY=DEFAULT_KEYS["shopify_api_key"],
        SHOPIFY_API_SECRET=DEFAULT_KEYS["shopify_api_secret"],
        CONNECTOR_PUBLIC_URL="https://connector.example",
        CONNECTOR_SECRET_KEY="a-stable-secret-key-of-the-operator",
        CONNECTOR_ADMIN_PASSWORD="admin-pw",
    )
    return create_app(settings)


# -------------------------------------------------------------------------------- the document


def test_openapi_json_is_served_and_is_a_valid_openapi_3_1_document(app):
    answer = app.test_client().get("/openapi.json")
    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    served = json.loads(answer.data)
    assert re.fullmatch(r"3\.1\.\d+", served["openapi"])
    validate_spec(served)  # the OpenAPI 3.1 schema (openapi-spec-validator), every $ref resolved
    assert served == document()


def test_every_route_of_the_app_is_documented(app):
    assert undocumented(app, document()) == []
    # The Shopify app's routes are there to be checked (the fixture enabled it).
    assert ("GET", "/shopify/install") in app_operations(app)


def test_a_route_added_without_documentation_fails_the_check(app):
    """The check can fail: a throwaway app with three more routes, none documented."""
    throwaway = create_app(app.extensions["connector.settings"])
    throwaway.add_url_rule("/webhooks/<tenant>/<source>/replay", "replay", lambda **_: "", methods=["POST"])
    throwaway.add_url_rule("/healthz", "healthz_delete", lambda: "", methods=["DELETE"])
    throwaway.add_url_rule("/admin/rqx/<int:n>", "lookalike", lambda n: "")  # not under /admin/rq/
    assert undocumented(throwaway, document()) == [
        "DELETE /healthz",
        "GET /admin/rqx/{n}",
        "POST /webhooks/{tenant}/{source}/replay",
    ]
    # And a prefix entry taken out of the document uncovers every route under it.
    without_dashboard = {**document(), "paths": {p: v for p, v in document()["paths"].items() if p != "/admin/rq/"}}
    assert any(line.startswith("GET /admin/rq/") for line in undocumented(app, without_dashboard))


def test_every_documented_operation_is_a_route_of_the_app(app):
    routes = app_operations(app)
    documented = {
        (method.upper(), path)
        for path, item in document()["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    covered = {(m, p) for m, p in documented if p in PREFIX_ENTRIES.values()}
    assert documented - routes - covered == set()


# ------------------------------------------------------------------------------- real answers


def _response_doc(path: str, method: str, status: int) -> dict[str, Any]:
    responses = document()["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path}: {status} is not documented"
    entry = responses[str(status)]
    if "$ref" in entry:
        name = entry["$ref"].rsplit("/", 1)[-1]
        entry = document()["components"]["responses"][name]
    return dict(entry)


def check(answer: Any, path: str, method: str) -> None:
    """The answer's status is documented for the operation, its content type too, and a JSON
    body validates against the documented schema."""
    entry = _response_doc(path, method, answer.status_code)
    content = entry.get("content", {})
    if not content:
        return
    assert answer.mimetype in content or "*/*" in content, (answer.mimetype, list(content))
    if answer.mimetype == "application/json":
        schema = {"allOf": [content["application/json"]["schema"]], "components": document()["components"]}
        OAS31Validator(schema).validate(json.loads(answer.data))
    for header in entry.get("headers", {}):
        assert header in answer.headers, f"{header} documented but not sent"


def _order_post(client: Any, webhook_id: str = "openapi-1") -> Any:
    body = load_fixture("shopify", "orders_paid")
    return client.post("/webhooks/harbour/shopify", data=body, headers=shopify_headers(body, webhook_id=webhook_id))


def test_the_webhook_answers_match_the_document(app):
    client = app.test_client()
    path = "/webhooks/{tenant}/{source}"
    accepted = _order_post(client)
    assert accepted.status_code == 202
    check(accepted, path, "POST")
    assert set(accepted.json) == {"status", "job"}
    duplicate = _order_post(client)
    assert (duplicate.status_code, duplicate.json["status"]) == (200, "duplicate")
    check(duplicate, path, "POST")

    body = load_fixture("shopify", "orders_paid")
    unsigned = client.post("/webhooks/harbour/shopify", data=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    check(unsigned, path, "POST")
    assert set(unsigned.json["error"]) >= {"code", "message"}
    unknown = client.post("/webhooks/nobody/shopify", data=body, headers=shopify_headers(body))
    assert unknown.status_code == 404
    check(unknown, path, "POST")
    wrong_type = client.post(
        "/webhooks/harbour/shopify", data=body, headers={**shopify_headers(body), "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    check(wrong_type, path, "POST")
    handshake = client.get("/webhooks/harbour/shopify")
    assert handshake.status_code == 405
    check(handshake, path, "GET")


def test_a_body_that_breaks_the_document_is_caught(app):
    """The check can fail: a 202 body without its job id does not validate."""
    accepted = _order_post(app.test_client(), "openapi-2")
    accepted.set_data(json.dumps({"status": "accepted"}))
    with pytest.raises(Exception, match="'job' is a required property"):
        check(accepted, "/webhooks/{tenant}/{source}", "POST")


def test_health_admin_shopify_and_page_answers_match_the_document(app):
    client = app.test_client()
    check(client.get("/healthz"), "/healthz", "GET")
    check(client.get("/readyz"), "/readyz", "GET")
    check(client.get("/metrics"), "/metrics", "GET")
    check(client.get("/openapi.json"), "/openapi.json", "GET")
    refused = client.get("/admin/rq/")
    assert refused.status_code == 401
    check(refused, "/admin/rq/", "GET")
    dashboard = client.get("/admin/rq/", headers={"Authorization": "Basic OmFkbWluLXB3"})
    assert dashboard.status_code == 200
    check(dashboard, "/admin/rq/", "GET")
    trace_path = "/admin/trace/{term}"
    assert client.get("/admin/trace/nothing").status_code == 401
    check(client.get("/admin/trace/nothing"), trace_path, "GET")
    check(client.get("/admin/trace/nothing", headers={"Authorization": "Basic OmFkbWluLXB3"}), trace_path, "GET")
    unsigned = client.post("/shopify/webhooks", data=b"{}", headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    check(unsigned, "/shopify/webhooks", "POST")
    check(client.get("/shopify/settings"), "/shopify/settings", "GET")
    check(client.get("/app/admin"), "/app/admin", "GET")
    forged = client.post("/app/admin", data={"password": "admin-pw"})  # no csrf_token
    assert forged.status_code == 403
    check(forged, "/app/admin", "POST")


def test_a_trace_answer_matches_the_document(app, work):
    client = app.test_client()
    accepted = _order_post(client, "openapi-trace")
    work()
    admin = {"Authorization": "Basic OmFkbWluLXB3", "Accept": "application/json"}
    answer = client.get(f"/admin/trace/{accepted.json['job']}", headers=admin)
    assert answer.status_code == 200, answer.data
    check(answer, "/admin/trace/{term}", "GET")
    assert answer.json["trace"] == accepted.json["job"]
    page = client.get(f"/admin/trace/{accepted.json['job']}", headers={"Authorization": "Basic OmFkbWluLXB3"})
    assert page.mimetype == "text/html"
    check(page, "/admin/trace/{term}", "GET")
