"""JSON error answers: ``{"error": {"code": ..., "message": ...}}`` for every failure."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON error body with the given status."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def http_error_response(exc: HTTPException) -> Response:
    """The JSON answer for werkzeug's HTTP error ``exc`` (its status, description and ``Allow``)."""
    status = exc.code or 500
    response = error_response(status, HTTP_CODES.get(status, "http_error"), exc.description or exc.name)
    if status == 405 and exc.get_response().headers.get("Allow"):
        response.headers["Allow"] = exc.get_response().headers["Allow"]
    return response


def internal_error_response() -> Response:
    """The answer to a bug (500): nothing was accepted, so the sender retries."""
    return error_response(500, "internal_error", "internal error; the delivery was not accepted")


def register_error_handlers(app: Flask) -> None:
    """Turn werkzeug's HTML errors (and any bug) into JSON errors."""
    app.register_error_handler(HTTPException, http_error_response)

    @app.errorhandler(Exception)
    def _bug(exc: Exception) -> Response:  # pragma: no cover - a bug, logged with its traceback
        app.logger.exception("unhandled error")
        return internal_error_response()
