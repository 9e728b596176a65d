"""The baseline: a bare Flask endpoint that reads the body and answers 202, nothing else."""

from __future__ import annotations

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/webhooks/<tenant>/<source>")
def receive(tenant: str, source: str):  # type: ignore[no-untyped-def]
    request.get_data()
    response = jsonify({"status": "accepted", "job": "bare"})
    response.status_code = 202
    return response
