"""The one HTTP base for every outbound call, and the one status-to-error mapping.

429, 5xx, timeouts and connection failures become :class:`RetriableDestinationError` (carrying
``Retry-After`` when the server sent one); every other 4xx becomes
:class:`FatalDestinationError` with the response body kept, secrets redacted, for support staff.

Connections are kept: each process holds one ``requests`` session per origin (scheme, host,
port; :func:`shared_session`), at most :data:`POOL_CONNECTIONS_PER_ORIGIN` idle connections
each, shared by every client and job of that process and dropped in a forked child (an RQ work
horse opens its own). Each client's headers and credentials travel with its own requests, never
on the session, and the session keeps no cookie, so tenants share sockets, never keys. A broken
connection is retried once for an idempotent GET (:class:`StaleConnectionRetry`), never for a
POST.
"""

from __future__ import annotations

import email.utils
import http.cookiejar
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry
from urllib3.util.util import reraise

from connector import activity_log
from connector.errors import DestinationError, FatalDestinationError, PayloadError, RetriableDestinationError
from connector.redaction import mask_emails, redact

__all__ = [
    "HttpClient",
    "forget_sessions",
    "isoformat",
    "parse_reset_epoch",
    "parse_retry_after",
    "path_segment",
    "raise_for_status",
    "redact",
    "shared_session",
]

log = logging.getLogger(__name__)

MAX_KEPT_BODY = 2000

POOL_CONNECTIONS_PER_ORIGIN = 4
"""Idle connections kept per origin (a worker process sends one request at a time; a threaded
web process may send a few). More at once are opened, used and closed, never kept."""
MAX_ORIGINS = 32
"""Origins (scheme, host, port) with a kept session per process; the least recently used one
beyond that is closed."""
MAX_IDLE_SECONDS = 30.0
"""A session unused for longer is replaced (its connections closed) before its next request: a
server or a NAT box in between may have dropped an idle connection without a word, and a POST
sent into it would only end in a timeout."""
DEFAULT_HEADERS: Mapping[str, str] = {"Accept": "application/json", "User-Agent": "loyalty-connector/1"}
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class StaleConnectionRetry(Retry):
    """Once more, on another connection, for an idempotent request whose connection broke
    before an answer came: a pooled keep-alive connection the server had closed just as it was
    reused (urllib3 cannot tell that from an answer dropped, and for a GET both are safe to
    repeat). Nothing else is retried, as with requests' own default (``max_retries=0``): never
    a POST or PATCH whose request may have reached the server (the job's retry and the
    ledger/attempt markers decide about those), never a connection that could not be made,
    never a read that timed out (the server is slow, not gone)."""

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        """The next retry state; a read timeout is raised as it is."""
        if isinstance(error, ReadTimeoutError):
            raise reraise(type(error), error, _stacktrace)
        return super().increment(method, url, response, error, _pool, _stacktrace)


def stale_connection_retry() -> StaleConnectionRetry:
    """The retry policy of the kept sessions: one more try for an idempotent request whose
    connection broke before its answer (:class:`StaleConnectionRetry`), nothing else."""
    return StaleConnectionRetry(
        total=1,
        connect=0,
        read=1,
        status=0,
        other=0,
        allowed_methods=IDEMPOTENT_METHODS,
        raise_on_status=False,
        respect_retry_after_header=False,
    )


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """A shared session serves every tenant: a cookie one tenant's answer set must never go out
    with another tenant's request, so none is kept."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return (parts.scheme.lower(), (parts.hostname or "").lower(), parts.port)


class _Sessions:
    """The process's kept sessions, one per origin, bounded, dropped in a forked child."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_origin: OrderedDict[tuple[str, str, int | None], requests.Session] = OrderedDict()
        self.used: dict[tuple[str, str, int | None], float] = {}  # origin -> when its session was last handed out
        self.inherited: list[OrderedDict[tuple[str, str, int | None], requests.Session]] = []

    def get(self, url: str) -> requests.Session:
        origin = _origin(url)
        now = time.monotonic()
        closing: list[requests.Session] = []
        with self.lock:
            session = self.by_origin.get(origin)
            if session is not None and now - self.used.get(origin, now) > MAX_IDLE_SECONDS:
                closing.append(session)
                session = None
            if session is None:
                session = _new_session(url)
                self.by_origin[origin] = session
            self.by_origin.move_to_end(origin)
            self.used[origin] = now
            while len(self.by_origin) > MAX_ORIGINS:
                evicted, oldest = self.by_origin.popitem(last=False)
                self.used.pop(evicted, None)
                closing.append(oldest)
        for old in closing:
            old.close()
        return session

    def forget(self) -> None:
        """Close every kept session (tests, a credential or host change)."""
        with self.lock:
            sessions = list(self.by_origin.values())
            self.by_origin.clear()
            self.used.clear()
        for session in sessions:
            session.close()

    def after_fork(self) -> None:
        """In a forked child (an RQ work horse): start empty. The parent's connections stay
        the parent's: used here too, two processes' requests and answers would interleave on
        one socket. The child keeps its copies referenced, unused, rather than closing them (a
        shutdown would end the parent's connection too). The lock may have been held by another
        thread of the parent at the fork: a new one."""
        self.inherited.append(self.by_origin)
        self.lock = threading.Lock()
        self.by_origin = OrderedDict()
        self.used = {}


def _new_session(url: str) -> requests.Session:
    """A session for ``url``'s origin, with the environment's settings for it read once."""
    session = requests.Session()
    # Only requests' own defaults stay on the session (Accept-Encoding, Connection…, the same for
    # every client); each client's headers and credentials go with its requests.
    session.cookies.set_policy(_NoCookies())
    # The environment's proxies (HTTP_PROXY, HTTPS_PROXY, NO_PROXY…), CA bundle
    # (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE) and ~/.netrc entry for this origin, read here once
    # rather than by requests on every request: it walks the whole environment per request,
    # about 0.1 ms with 35 variables and more in a container with hundreds (issue 16). A session
    # is for one origin, so what NO_PROXY says of it does not change; an idle session is
    # replaced after MAX_IDLE_SECONDS, and then reads a changed environment.
    environment = session.merge_environment_settings(url, {}, None, None, None)
    netrc_auth = requests.utils.get_netrc_auth(url)
    session.trust_env = False
    session.proxies.update(environment["proxies"])
    session.verify = environment["verify"]
    if netrc_auth is not None:  # as requests would: only for a request without credentials of its own
        session.auth = netrc_auth
    adapter = HTTPAdapter(
        pool_connections=1, pool_maxsize=POOL_CONNECTIONS_PER_ORIGIN, max_retries=stale_connection_retry()
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


_SESSIONS = _Sessions()
os.register_at_fork(after_in_child=_SESSIONS.after_fork)


def shared_session(url: str) -> requests.Session:
    """This process's session for ``url``'s origin (scheme, host, port): its connections are
    kept alive and reused by every client of that origin, in every job this process runs. It
    holds no client's header, credential or cookie: each :class:`HttpClient` sends its own per
    request."""
    return _SESSIONS.get(url)


def forget_sessions() -> None:
    """Close this process's kept sessions and their connections."""
    _SESSIONS.forget()


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


def path_segment(value: object, safe: str = "") -> str:
    """``value`` as exactly one URL path segment: every character outside the unreserved set
    percent-encoded (``/``, ``?``, ``#``, ``%``, spaces…), and a segment of dots written ``%2E``, so
    that no client, proxy or server takes ``..`` for a step up the path. Every id placed in a path
    goes through here. ``safe`` names sub-delimiters a vendor wants literal (LoyaltyLion's ``$``).

    Raises:
        PayloadError: the value is empty (the path would name the collection, not the item).
    """
    segment = quote(str(value), safe=safe)
    if not segment:
        raise PayloadError("an empty id cannot name a resource in a URL path")
    if not segment.strip("."):
        segment = segment.replace(".", "%2E")
    return segment


def parse_reset_epoch(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds until an ``X-RateLimit-Reset`` given as Unix epoch seconds (Braze, Intercom)."""
    if not value:
        return None
    try:
        reset = float(value.strip())
    except ValueError:
        return None
    current = now if now is not None else time.time()
    return max(0.0, reset - current)


def raise_for_status(
    response: requests.Response,
    *,
    destination: str,
    secrets: Iterable[str] = (),
    retry_after_hint: Callable[[requests.Response], float | None] | None = None,
) -> None:
    """Map a response's status onto the error hierarchy; 2xx/3xx pass.

    ``retry_after_hint`` reads a vendor's own back-off signal from a 429/5xx response (default:
    the ``Retry-After`` header).
    """
    status = response.status_code
    if status < 400:
        return
    secrets = tuple(secrets)
    body = mask_emails(redact(response.text[:MAX_KEPT_BODY], secrets))
    # The path without its query (a look-up by email carries the address there), redacted: a
    # path may hold an identifier the client hides. What is kept goes into failure reasons.
    path = (response.request.path_url or "").split("?", 1)[0]
    message = mask_emails(
        redact(f"{destination} answered {status} to {response.request.method} {path}: {body}", secrets)
    )
    if status == 429 or status >= 500:
        raise RetriableDestinationError(
            message,
            destination=destination,
            status=status,
            body=body,
            retry_after=(
                retry_after_hint(response)
                if retry_after_hint is not None
                else parse_retry_after(response.headers.get("Retry-After"))
            ),
        )
    raise FatalDestinationError(message, destination=destination, status=status, body=body)


class HttpClient:
    """A base URL, this client's own headers and credentials, a timeout and the shared error
    mapping, over the process's kept session for the base URL's origin (:func:`shared_session`).

    The headers (``headers``) and basic-auth pair (:attr:`auth`) are the client's, sent with
    each of its requests; the session carries none, so two tenants' clients of one vendor
    share connections, never keys. Subclasses set ``destination`` and add one method per
    remote operation.
    """

    destination = "http"
    # The connection check every client shares.
    check_request: ClassVar[tuple[str, str] | None] = None
    """``(method, path)`` of the vendor's cheapest authenticated call (see each vendor's NOTE.md);
    ``None``: the vendor has none (:attr:`check_unavailable` says why)."""
    check_params: ClassVar[Mapping[str, str]] = {}
    check_unavailable: ClassVar[str] = "this vendor offers no call to test its credentials with"

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        secrets: Iterable[str] = (),
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.secrets = tuple(s for s in secrets if s)
        self.session = session or shared_session(self.base_url)
        self.headers: dict[str, str] = {**DEFAULT_HEADERS, **(headers or {})}
        self.auth: tuple[str, str] | None = None

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one request; return the response or raise a destination error."""
        url = f"{self.base_url}{path}"
        started = time.perf_counter()
        try:
            response = self._send(method, url, **kwargs)
        except requests.Timeout:
            self._note(method, path, None, started)
            raise RetriableDestinationError(
                redact(f"{self.destination}: timed out after {self.timeout}s on {method} {path}", self.secrets),
                destination=self.destination,
            ) from None
        except requests.ConnectionError as exc:
            self._note(method, path, None, started)
            # Not chained: requests' message repeats the URL (query included) in the stored traceback.
            raise RetriableDestinationError(
                redact(f"{self.destination}: connection failed on {method} {path}: {type(exc).__name__}", self.secrets),
                destination=self.destination,
            ) from None
        self._note(method, path, response.status_code, started)
        log.info(
            "destination.%s.%s %s %s %.1fms",
            self.destination,
            method.lower(),
            redact(path.split("?")[0], self.secrets),
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        self.observe(response)
        raise_for_status(
            response, destination=self.destination, secrets=self.secrets, retry_after_hint=self.retry_after_hint
        )
        return response

    def _note(self, method: str, path: str, status: int | None, started: float) -> None:
        """Keep the request (method, path without query, status, duration) for the current job's
        attempt record: the support trace (:mod:`connector.activity_log`)."""
        activity_log.note_request(self.destination, method, path, status, (time.perf_counter() - started) * 1000)

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        # This client's headers and credentials go with the request, never onto the shared session.
        kwargs["headers"] = {**self.headers, **(kwargs.get("headers") or {})}
        kwargs.setdefault("auth", self.auth)
        if "%2E" not in url:
            return self.session.request(method, url, timeout=self.timeout, **kwargs)
        # requests "requotes" every URL, decoding %2E back to "." (after its own dot-segment
        # removal): a ".." id would then climb a level at the server. Send the path as encoded.
        prepared = self.session.prepare_request(requests.Request(method, url, **kwargs))
        prepared.url = urlunsplit(urlsplit(prepared.url or url)._replace(path=urlsplit(url).path))
        settings = self.session.merge_environment_settings(prepared.url, {}, None, None, None)
        return self.session.send(prepared, timeout=self.timeout, **settings)

    # The connection check every client shares.
    def check_connection(self) -> dict[str, Any]:
        """Make the vendor's cheapest authenticated call (:attr:`check_request`) and say how it went.

        Never raises for what the vendor answers: the result is JSON-safe, carries no secret
        (bodies are redacted with the client's secrets) and reads ``{"ok", "status",
        "latency_ms", "said", "error", "reachable"}``; ``"checked": False`` when the vendor has no
        such call (``said`` then explains).
        """
        if self.check_request is None:
            return {"ok": False, "checked": False, "status": None, "latency_ms": None, "said": self.check_unavailable}
        method, path = self.check_request
        started = time.perf_counter()
        try:
            response = self.request(method, path, params=dict(self.check_params) or None)
        except DestinationError as exc:
            return {
                "ok": False,
                "checked": True,
                "status": exc.status,
                "latency_ms": round((time.perf_counter() - started) * 1000, 1),
                "error": redact(str(exc), self.secrets),
                "body": redact(exc.body or "", self.secrets),
                "reachable": exc.status is not None,
            }
        latency = round((time.perf_counter() - started) * 1000, 1)
        try:
            answer = response.json() if response.content else None
        except ValueError:
            answer = None
        return {
            "ok": True,
            "checked": True,
            "status": response.status_code,
            "latency_ms": latency,
            "said": redact(self.describe_check(answer), self.secrets),
            "reachable": True,
        }

    def describe_check(self, answer: Any) -> str:
        """What the check's answer says worth showing (the account's name…); override per vendor."""
        return ""

    def observe(self, response: requests.Response) -> None:
        """Hook for subclasses: see every answer (rate-limit headers, vendor-specific fatal
        statuses) before the shared status mapping runs. May raise a destination error."""

    def retry_after_hint(self, response: requests.Response) -> float | None:
        """Seconds the server asked us to wait (override for vendors with their own headers)."""
        return parse_retry_after(response.headers.get("Retry-After"))

    def json(self, response: requests.Response) -> Any:
        """Decode a JSON body; an unusable success answer is fatal (retrying won't fix it)."""
        try:
            return response.json()
        except ValueError as exc:
            raise FatalDestinationError(
                f"{self.destination}: answered {response.status_code} with a non-JSON body",
                destination=self.destination,
                status=response.status_code,
                body=redact(response.text[:MAX_KEPT_BODY], self.secrets),
            ) from exc


def isoformat(value: datetime) -> str:
    """ISO 8601 with an explicit offset (never a naive timestamp)."""
    if value.utcoffset() is None:
        raise ValueError("naive datetime")
    return value.isoformat()
