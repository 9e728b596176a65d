"""WSGI entry point for gunicorn: ``gunicorn -c config/gunicorn.conf.py wsgi:app``."""

import logging

from connector import create_app
from connector.durability import check_durability

app = create_app()
# Said once at start (in the gunicorn master, before forking): a Redis that can lose what was
# acknowledged is the operator's to fix (see the README's "Redis in production").
_durability = check_durability(app.extensions["connector.redis"])
if not _durability.durable:
    logging.getLogger("gunicorn.error").warning("Redis durability: %s", _durability.message)
