"""The intake's WSGI fast path (issue 16): webhook POSTs served ahead of Flask's request machinery
answer exactly as Flask's routing to the same view does, and everything else still goes through Flask.

Each case is sent twice on a real Redis: through the app as deployed (the fast path in front) and
through the Flask app behind it (``IntakeFastPath.wsgi_app``), with fresh delivery ids for each so
neither sees the other's as a duplicate.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from conftest import load_fixture, shopify_headers
from werkzeug.test import Client, TestResponse

from connector.web import create_app, webhooks

BODY = load_fixture("shopify", "orders_paid")
URL = "/webhooks/harbour/shopify"
_ids = itertools.count(1)


@pytest.fixture
def pair(settings: Any, redis: Any) -> tuple[Client, Client, list[str]]:
    """(the deployed app, the Flask app behind its fast path, the paths Flask's hooks saw)."""
    app = create_app(settings)
    seen: list[str] = []

    @app.before_request
    def _flask_saw() -> None:
        from flask import request

        seen.append(request.path)

    assert isinstance(app.wsgi_app, webhooks.IntakeFastPath)
    return Client(app, TestResponse), Client(app.wsgi_app.wsgi_app, TestResponse), seen


def _signed(body: bytes = BODY, **headers: Any) -> dict[str, str]:
    return shopify_headers(body, webhook_id=f"fast-path-{next(_ids)}", **headers)


def _answer(response: TestResponse) -> tuple[int, dict[str, str], Any]:
    """Status, headers and JSON body, with the job id (which follows the delivery id) left out."""
    body = json.loads(response.get_data()) if response.mimetype == "application/json" else response.get_data()
    if isinstance(body, dict) and "job" in body:
        body = {**body, "job": body["job"].split("-")[0]}
    return response.status_code, dict(response.headers), body


CASES: list[tuple[str, str, Any, Any]] = [
    # (name, path, body, headers: a function of the body giving fresh ones each call)
    ("accepted", URL, BODY, lambda body: _signed(body)),
    ("bad signature", URL, BODY, lambda body: _signed(body, secret="not-the-secret")),
    ("unknown tenant", "/webhooks/nobody/shopify", BODY, lambda body: _signed(body)),
    ("unknown source", "/webhooks/harbour/nosuch", BODY, lambda body: _signed(body)),
    # a source the tenant lacks, whose every answer carries its header (wifiWebhookListener)
    ("source not configured", "/webhooks/harbour/purple", BODY, lambda body: _signed(body)),
    ("token segment", URL + "/extra-token", BODY, lambda body: _signed(body)),
    ("wrong content type", URL, BODY, lambda body: {**_signed(body), "Content-Type": "text/plain"}),
    ("too large", URL, b"{" + b" " * (1024 * 1024) + b"}", lambda body: _signed(body)),
    ("not JSON", URL, b"{not json", lambda body: _signed(body)),
    ("too deep", URL, b"[" * 65 + b"]" * 65, lambda body: _signed(body)),
    ("topic not configured", URL, BODY, lambda body: _signed(body, topic="products/update")),
    ("no webhook id", URL, BODY, lambda body: {k: v for k, v in _signed(body).items() if "Webhook-Id" not in k}),
]


@pytest.mark.parametrize(("name", "path", "body", "headers"), CASES, ids=[case[0] for case in CASES])
def test_the_fast_path_answers_as_flask_does(pair, name, path, body, headers):
    fast, flask_only, seen = pair
    through_fast = fast.post(path, data=body, headers=headers(body))
    assert seen == [], "the fast path served it (Flask's hooks never ran)"
    through_flask = flask_only.post(path, data=body, headers=headers(body))
    assert seen == [path]
    assert _answer(through_fast) == _answer(through_flask), name
    if name == "source not configured":
        assert through_fast.headers["wifiWebhookListener"] == "1"


def test_a_repeated_delivery_is_a_duplicate_on_both(pair):
    fast, flask_only, _ = pair
    answers = []
    for client in (fast, flask_only):
        headers = _signed()
        first, again = client.post(URL, data=BODY, headers=headers), client.post(URL, data=BODY, headers=headers)
        assert (first.status_code, again.status_code) == (202, 200)
        assert again.json["job"] == first.json["job"]
        answers.append(_answer(again))
    assert answers[0] == answers[1]


@pytest.mark.parametrize(
    "path",
    ["/webhooks/h\u00e2rbour/shopify", "/webhooks//shopify", "/webhooks/harbour/shopify/", "/webhooks/_mews/token"],
)
def test_anything_else_goes_through_flask(pair, path):
    fast, flask_only, seen = pair
    through_fast = fast.post(path, data=BODY, headers=_signed())
    assert seen == [path] or through_fast.status_code in (301, 308), seen
    assert _answer(through_fast)[0] == _answer(flask_only.post(path, data=BODY, headers=_signed()))[0]


def test_a_bug_in_the_intake_is_the_apps_json_500_on_both(pair, monkeypatch, caplog):
    fast, flask_only, _ = pair

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(webhooks, "accept_webhook", broken)
    through_fast = fast.post(URL, data=BODY, headers=_signed())
    through_flask = flask_only.post(URL, data=BODY, headers=_signed())
    assert through_fast.status_code == 500 and through_fast.json["error"]["code"] == "internal_error"
    assert _answer(through_fast) == _answer(through_flask)
    assert [r.exc_info is not None for r in caplog.records if r.getMessage() == "unhandled error"] == [True, True]


def test_the_fast_path_applies_every_app_wide_hook(settings):
    """The fast path runs this blueprint's app-wide hooks itself: a new app-wide hook (before,
    after, teardown, URL preprocessor) must be applied by ``IntakeFastPath`` too, and this fails
    until it is."""
    app = create_app(settings)

    def names(funcs: Any) -> list[str]:
        return sorted(func.__name__ for func in funcs)

    assert names(app.before_request_funcs.get(None, [])) == ["_intake_started"]
    assert names(app.after_request_funcs.get(None, [])) == ["_intake_finished", "_source_response_headers"]
    assert not app.teardown_request_funcs.get(None) and not app.url_value_preprocessors.get(None)
    webhook_hooks = (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs)
    assert not any(hooks.get("webhooks") for hooks in webhook_hooks)
