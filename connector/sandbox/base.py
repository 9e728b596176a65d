"""Shared pieces of the vendor sandboxes: fault injection and the ``/_sandbox`` control routes.

Every vendor sandbox is a Flask blueprint mounted under ``/<vendor>`` of one sandbox server.
Each has ``/_sandbox/faults`` (POST a fault, DELETE to clear), ``/_sandbox/state`` (what the
vendor holds) and ``/_sandbox/reset``. Faults apply to the next N vendor API calls:

* ``{"mode": "status", "status": 500, "count": 2}`` — answer that status (JSON error body);
* ``{"mode": "status", "status": 429, "retry_after": 1, "count": 1}`` — with ``Retry-After``
  (or the vendor's own rate-limit headers);
* ``{"mode": "slow", "seconds": 3, "count": 1}`` — sleep before answering normally;
* ``{"mode": "drop", "count": 1}`` — close the connection without an answer;
* ``{"mode": "echo", "status": 400, "count": 1}`` — answer that status with the request itself
  (method, path, query, headers, body) in the error body, as careless servers do: the connector
  must not store, log or show the credentials it finds there.
* ``{"mode": "drop_after", "count": 1}`` — handle the call normally (the vendor stores what it
  creates), then close the connection instead of sending a 2xx answer: the caller cannot tell
  whether the write happened.

Add ``"path": "/activities"`` to a fault to aim it at calls whose path ends that way only, and
``"probability": 0.1`` to make it hit only that share of the calls it applies to (``count`` then
counts hits; ``make faults`` arms ``{"mode": "status", "status": 500, "probability": 0.1,
"count": 1000000000}`` for a steady 10 % of 500s).
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request


@dataclass
class Fault:
    """One armed fault and how many more calls it applies to."""

    mode: str
    count: int = 1
    status: int = 500
    retry_after: float | None = None
    seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    path: str | None = None  # only calls whose path ends with this (e.g. "/activities")
    probability: float = 1.0  # share of the matching calls it hits


DROP_AFTER_FLAG = "sandbox.drop_after"


class FaultInjector:
    """A thread-safe FIFO of faults consumed by vendor API calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.calls = 0
        self.targets: list[str] = []  # request targets as sent (still percent-encoded)
        self.times: list[float] = []  # when each call came (epoch seconds), in order
        self.answered: list[tuple[float, int, dict[str, str]]] = []  # each faulty answer: when, status, headers

    def arm(self, spec: dict[str, Any]) -> Fault:
        """Add a fault from its JSON spec."""
        mode = spec.get("mode", "status")
        if mode not in {"status", "slow", "drop", "echo", "drop_after"}:
            raise ValueError(f"unknown fault mode {mode!r}")
        fault = Fault(
            mode=mode,
            count=int(spec.get("count", 1)),
            status=int(spec.get("status", 500)),
            retry_after=spec.get("retry_after"),
            seconds=float(spec.get("seconds", 0)),
            headers={str(k): str(v) for k, v in (spec.get("headers") or {}).items()},
            path=spec.get("path"),
            probability=float(spec.get("probability", 1.0)),
        )
        if not 0.0 <= fault.probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Disarm everything."""
        with self._lock:
            self._faults.clear()
            self.calls = 0
            self.targets.clear()
            self.times.clear()
            self.answered.clear()

    def record(self, target: str) -> None:
        """Remember a call's request target as sent (tests check how ids were escaped)."""
        with self._lock:
            self.targets.append(target)

    def remember(self, status: int, headers: dict[str, str]) -> None:
        """Keep a faulty answer (when, status, headers): tests check how long the caller then waited."""
        with self._lock:
            self.answered.append((time.time(), status, headers))

    def take(self, path: str = "") -> Fault | None:
        """Count a call and return the first armed fault that applies to its path, if any."""
        with self._lock:
            self.calls += 1
            self.times.append(time.time())
            for index, fault in enumerate(self._faults):
                if fault.path and not path.endswith(fault.path):
                    continue
                if fault.probability < 1.0 and random.random() >= fault.probability:
                    continue
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.pop(index)
                return fault
            return None


def parse_aware(value: Any) -> datetime | None:
    """An ISO 8601 timestamp with an explicit offset (``Z`` allowed), else ``None``."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else None


def drop_connection() -> Response:
    """Close the client socket without an HTTP answer (werkzeug's dev server exposes it)."""
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
    return Response(status=500)


def raw_target() -> str:
    """The request target exactly as the client sent it (werkzeug decodes ``PATH_INFO``)."""
    return str(request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.full_path)


def echoed_request() -> dict[str, Any]:
    """The current request as an echoing server would put it in an error answer."""
    return {
        "method": request.method,
        "path": raw_target(),
        "query": request.query_string.decode("latin-1"),
        "args": request.args.to_dict(flat=False),
        "headers": dict(request.headers.items()),
        "body": request.get_data(as_text=True),
        "form": request.form.to_dict(flat=False),
    }


def apply_fault(
    injector: FaultInjector,
    error_body: Callable[[int], dict[str, Any]],
    rate_limit_headers: Callable[[Fault], dict[str, str]] | None = None,
) -> Response | None:
    """Consume one fault for this call; return the faulty answer, or ``None`` to go on."""
    injector.record(raw_target())
    fault = injector.take(request.path)
    if fault is None:
        return None
    if fault.mode == "slow":
        time.sleep(fault.seconds)
        return None
    if fault.mode == "drop":
        return drop_connection()
    if fault.mode == "drop_after":
        # The route runs and stores what it creates; the after-request hook of
        # add_control_routes then drops the connection instead of answering.
        request.environ[DROP_AFTER_FLAG] = True
        return None
    body = error_body(fault.status)
    if fault.mode == "echo":
        body = {**body, "echo": echoed_request()}
    response = jsonify(body)
    response.status_code = fault.status
    if fault.status == 429:
        if rate_limit_headers is not None:
            response.headers.update(rate_limit_headers(fault))
        elif fault.retry_after is not None:
            response.headers["Retry-After"] = (
                str(int(fault.retry_after)) if float(fault.retry_after).is_integer() else str(fault.retry_after)
            )
    response.headers.update(fault.headers)
    injector.remember(fault.status, dict(response.headers.items()))
    return response


def add_control_routes(
    bp: Blueprint, injector: FaultInjector, state: Callable[[], Any], reset: Callable[[], None]
) -> None:
    """``/_sandbox/faults``, ``/_sandbox/state`` and ``/_sandbox/reset`` on a vendor blueprint,
    and the after-request hook that carries out ``drop_after`` faults."""

    @bp.after_request
    def _drop_after(response: Response) -> Response:
        if request.environ.get(DROP_AFTER_FLAG) and 200 <= response.status_code < 300:
            return drop_connection()  # the write happened; its answer never reaches the caller
        return response

    @bp.post("/_sandbox/faults")
    def _arm() -> tuple[Response, int]:
        try:
            fault = injector.arm(request.get_json(force=True) or {})
        except (ValueError, TypeError) as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify({"armed": fault.mode, "count": fault.count}), 201

    @bp.delete("/_sandbox/faults")
    def _disarm() -> Response:
        injector.clear()
        return jsonify({"cleared": True})

    @bp.get("/_sandbox/state")
    def _state() -> Response:
        return jsonify(state())

    @bp.post("/_sandbox/reset")
    def _reset() -> Response:
        reset()
        injector.clear()
        return jsonify({"reset": True})


def seed_from_request(seed: Callable[[list[Any]], None]) -> tuple[Response, int]:
    """Answer a ``POST /_sandbox/<collection>``: upsert the JSON body (one item or a list) with ``seed``.

    **201** ``{"seeded": n}``, or **400** ``{"error": ...}`` when ``seed`` rejects an item.
    """
    body = request.get_json(silent=True)
    items = body if isinstance(body, list) else [body]
    try:
        seed(items)
    except (ValueError, KeyError, TypeError) as exc:
        return jsonify({"error": str(exc)}), 400
    return jsonify({"seeded": len(items)}), 201


class VendorSandbox:
    """Base of the vendor sandboxes: a lock, a :class:`FaultInjector` and state set by :meth:`reset`.

    Subclasses keep their credentials, then call ``super().__init__()``; they implement
    :meth:`reset`, :meth:`state` and ``blueprint()``.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults = FaultInjector()
        self.reset()

    def reset(self) -> None:
        """Forget everything held."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """What the vendor holds, for tests."""
        raise NotImplementedError


class ReservationSandbox(VendorSandbox):
    """An in-memory PMS holding reservations keyed by ``id_field``, with a call log and faults.

    Subclasses set ``id_field`` and add their API routes in :meth:`blueprint`, starting from
    :meth:`base_blueprint` (control routes plus ``POST /_sandbox/reservations``).
    """

    id_field = "id"

    def reset(self) -> None:
        """Forget reservations and calls."""
        with self.lock:
            self.reservations: dict[str, dict[str, Any]] = {}
            self.calls: list[str] = []

    def seed(self, *reservations: dict[str, Any]) -> None:
        """Upsert reservations by ``id_field``."""
        with self.lock:
            for reservation in reservations:
                self.reservations[str(reservation[self.id_field])] = dict(reservation)

    def state(self) -> dict[str, Any]:
        """Reservations and the API call log."""
        with self.lock:
            return {"reservations": list(self.reservations.values()), "calls": list(self.calls)}

    def base_blueprint(self, name: str) -> Blueprint:
        """A blueprint with the ``/_sandbox`` routes, including ``POST /_sandbox/reservations``."""
        bp = Blueprint(name, __name__)
        add_control_routes(bp, self.faults, self.state, self.reset)

        @bp.post("/_sandbox/reservations")
        def _seed() -> tuple[Response, int]:
            return seed_from_request(lambda items: self.seed(*items))

        return bp
