"""gunicorn settings for the web tier (``gunicorn -c config/gunicorn.conf.py wsgi:app``).

Environment overrides: ``CONNECTOR_BIND`` (default 127.0.0.1:8000), ``WEB_CONCURRENCY``
(worker processes, default 2 x cores + 1), ``CONNECTOR_WEB_THREADS`` (threads per worker).
"""

import multiprocessing
import os

bind = os.environ.get("CONNECTOR_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("CONNECTOR_WEB_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
# Validate settings and the tenants file once, before forking: a bad config stops start-up.
preload_app = True
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = os.environ.get("CONNECTOR_ACCESS_LOG", None)
errorlog = "-"
loglevel = os.environ.get("CONNECTOR_LOG_LEVEL", "info")

# HotspotSystem signs webhooks in a header whose name contains underscores
# (HTTP_X_HOTSPOTSYSTEM_HMAC_SHA256). gunicorn >= 22 drops every such header by default
# (header_map = "drop") because "X_Foo" and "X-Foo" both become HTTP_X_FOO in the WSGI environ and
# could be used to spoof one another. Rather than header_map = "dangerous" (every header, every
# peer), only these two names are mapped, and only when they come from a trusted front end
# (forwarded_allow_ips / FORWARDED_ALLOW_IPS, default 127.0.0.1,::1: the local nginx). The value is
# an HMAC checked by the hotspotsystem source, so a spoofed or merged value can only fail (401).
# nginx in front must also pass them: `underscores_in_headers on;` (see the README).
forwarder_headers = "SCRIPT_NAME,PATH_INFO,HTTP_X_HOTSPOTSYSTEM_HMAC_SHA256,X_HOTSPOTSYSTEM_HMAC_SHA256"
