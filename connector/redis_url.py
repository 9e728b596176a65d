"""``REDIS_URL``: a plain Redis URL, or a Redis Sentinel set that names the primary to use.

The Sentinel form (the scheme redis-sentinel-url and rq-dashboard read too)::

    redis+sentinel://[[username]:password@]host1[:26379][,host2[:26379]...]/<service_name>[/<db>][?sentinel_password=...]

* the hosts are the *sentinels* (port 26379 when omitted), not the Redis servers;
* ``service_name`` is the name the sentinels monitor (``sentinel monitor <service_name> ...``);
* ``db`` is the database number on the primary (0 when omitted);
* ``username`` / ``password`` authenticate to the primary (and to the replicas), i.e. Redis's
  ``requirepass`` / ACL; ``sentinel_password`` (query) authenticates to the sentinels when they
  have a ``requirepass`` of their own. No other query parameter is accepted.

Every client the connector makes (web tier, workers, RQ's scheduler, rq-dashboard, the CLI)
comes from :func:`connector.queue.connect`, which asks the sentinels for the current primary on
every (re)connect, so a failover is followed without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_DEFAULT_PORT = 26379
SENTINEL_QUERY_OPTIONS = frozenset({"sentinel_password"})
SENTINEL_FORM = "redis+sentinel://[:password@]host1:26379,host2:26379/<service_name>/<db>"


@dataclass(frozen=True)
class SentinelTarget:
    """Where a Sentinel ``REDIS_URL`` points: the sentinels, the service, the database, credentials."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def is_sentinel_url(url: str) -> bool:
    """The URL names a Sentinel set (``redis+sentinel://``) rather than one Redis server."""
    return url.lower().startswith(f"{SENTINEL_SCHEME}://")


def _host_port(item: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` of one sentinel."""
    if item.startswith("["):
        host, bracket, rest = item[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"sentinel {item!r}: an IPv6 address is written [address]:port")
        port_text = rest[1:]
    else:
        host, _, port_text = item.partition(":")
    if not host:
        raise ValueError(f"sentinel {item!r} has no host name")
    if not port_text:
        return host, SENTINEL_DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"sentinel {item!r}: the port must be a number from 1 to 65535")
    return host, int(port_text)


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Parse a ``redis+sentinel://`` URL; ``ValueError`` says what is wrong (never echoing a password)."""
    if not is_sentinel_url(url):
        raise ValueError(f"a Sentinel URL starts with {SENTINEL_SCHEME}://")
    rest = url[len(SENTINEL_SCHEME) + 3 :]
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        hosts, userinfo = netloc, ""
    username, _, password = userinfo.partition(":")
    items = [item.strip() for item in hosts.split(",")]
    if not hosts or any(not item for item in items):
        raise ValueError("no sentinel host")
    sentinels = tuple(_host_port(item) for item in items)
    parts = path.strip("/").split("/") if path.strip("/") else []
    if not parts:
        raise ValueError("no service name (the name the sentinels monitor)")
    if len(parts) > 2:
        raise ValueError("too many path segments")
    db = 0
    if len(parts) == 2:
        if not parts[1].isdigit():
            raise ValueError(f"the database must be a number, not {parts[1]!r}")
        db = int(parts[1])
    options = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(options) - SENTINEL_QUERY_OPTIONS)
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)}: only sentinel_password is accepted")
    sentinel_password = options.get("sentinel_password", [""])[-1]
    return SentinelTarget(
        sentinels=sentinels,
        service_name=unquote(parts[0]),
        db=db,
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_password=sentinel_password or None,
    )
