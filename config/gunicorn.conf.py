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
