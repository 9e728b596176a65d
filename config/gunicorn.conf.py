"""gunicorn settings for the web tier (``gunicorn -c config/gunicorn.conf.py wsgi:app``).

Environment overrides: ``PORT`` (set by a Procfile runner: Heroku, Dokku, honcho, foreman; the web
process then listens on 0.0.0.0:$PORT, and ``PORT`` wins over ``CONNECTOR_BIND``, because such a
platform routes traffic to that port only), ``CONNECTOR_BIND`` (where ``PORT`` is not set; default
127.0.0.1:8000), ``WEB_CONCURRENCY``
(worker processes, default 2 x cores + 1), ``CONNECTOR_WEB_THREADS`` (threads per worker, default
64; 1 selects gunicorn's sync worker, the default before issue 11), ``CONNECTOR_WEB_WORKER_CLASS``
(a gunicorn worker class, default gthread; see below before choosing gevent or eventlet).
"""

import gc
import multiprocessing
import os

# A platform that runs the Procfile hands the web process its port in PORT and sends traffic there
# only, so PORT wins: a CONNECTOR_BIND left in a shared environment file must not strand the process.
_platform_port = os.environ.get("PORT")
bind = f"0.0.0.0:{_platform_port}" if _platform_port else os.environ.get("CONNECTOR_BIND") or "127.0.0.1:8000"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
# Threaded workers, so a slow client cannot take the intake down. A sync worker reads a request
# on its only thread: twenty connections trickling their headers or body (slowloris) held every
# worker until gunicorn's timeout killed it, and no webhook was answered for the whole attack. A
# gthread worker parks a slow client on one of its threads and goes on answering on the others;
# `make bench` measures 100 slow connections against the defaults (README, Performance). 64 per
# worker because gunicorn's workers take connections unevenly (24 threads x 5 workers still lost
# webhooks to 100 slow connections; 64 lost none); an idle thread costs only its stack. Each thread
# that serves the intake holds its own Redis connection (connector/queue.py), so Redis may see up
# to workers x threads clients. Green threads (gevent, eventlet) are not an option as is: that
# held connection is per OS thread, so greenlets share one socket (measured with gevent: 500s, 503s,
# fresh webhooks answered "duplicate"). In production put a buffering proxy in front anyway.
threads = int(os.environ.get("CONNECTOR_WEB_THREADS", "64"))
worker_class = os.environ.get("CONNECTOR_WEB_WORKER_CLASS") or ("gthread" if threads > 1 else "sync")
# Validate settings and the tenants file once, before forking: a bad config stops start-up.
preload_app = True
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = os.environ.get("CONNECTOR_ACCESS_LOG", None)
errorlog = "-"
loglevel = os.environ.get("CONNECTOR_LOG_LEVEL", "info")
# One log format for every process (connector/logs.py; CONNECTOR_LOG_FORMAT=json for JSON lines):
# gunicorn's error and access loggers and the root logger all write through the connector's
# formatter. The access log keeps its destination (CONNECTOR_ACCESS_LOG: a file, or "-" for
# stdout; unset: off); its lines are redacted like every record (URL path tokens, secrets in any
# encoding) and anything email-shaped in them is masked.
_formatter = {"()": "connector.logs.make_formatter", "process": "web"}
_access_handler: dict[str, object] = (
    {"class": "logging.StreamHandler", "formatter": "connector", "stream": "ext://sys.stdout"}
    if accesslog in (None, "-")
    else {"class": "logging.FileHandler", "formatter": "connector", "filename": accesslog}
)
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"connector": _formatter},
    "handlers": {
        "connector": {"class": "connector.logs.StderrHandler", "formatter": "connector"},
        "access": _access_handler,
    },
    "root": {"level": loglevel.upper(), "handlers": ["connector"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["connector"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
    },
}
# gunicorn 27's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl), so a
# second server on the machine (the bench runs five, the tests several) would take it over from
# the first. The connector does not use it.
control_socket_disable = True
# -- issue 16 intake: no access line unless CONNECTOR_ACCESS_LOG is set (gunicorn writes one whenever
# logconfig_dict is set, as above; building it cost the intake a sixth of its CPU per webhook) --
logger_class = "connector.web.gunicorn_logger.ConnectorGunicornLogger"


def pre_fork(server: object, worker: object) -> None:
    """Freeze what the preloaded app allocated before each worker is forked: the collector's
    full passes then skip the app's few hundred thousand objects (a full pass over them cost a
    15 KB webhook 80 us on average, measured in-process; frozen, 11 us), and the worker shares
    those pages with the master instead of copying them (the Python docs' advice for pre-fork
    servers, gc.freeze)."""
    gc.freeze()


# -- end issue 16 intake --

# HotspotSystem signs webhooks in a header whose name contains underscores
# (HTTP_X_HOTSPOTSYSTEM_HMAC_SHA256). gunicorn >= 22 drops every such header by default
# (header_map = "drop") because "X_Foo" and "X-Foo" both become HTTP_X_FOO in the WSGI environ and
# could be used to spoof one another. Rather than header_map = "dangerous" (every header, every
# peer), only these two names are mapped, and only when they come from a trusted front end
# (forwarded_allow_ips / FORWARDED_ALLOW_IPS, default 127.0.0.1,::1: the local nginx). The value is
# an HMAC checked by the hotspotsystem source, so a spoofed or merged value can only fail (401).
# nginx in front must also pass them: `underscores_in_headers on;` (see the README).
forwarder_headers = "SCRIPT_NAME,PATH_INFO,HTTP_X_HOTSPOTSYSTEM_HMAC_SHA256,X_HOTSPOTSYSTEM_HMAC_SHA256"
