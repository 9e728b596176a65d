"""WSGI entry point for gunicorn: ``gunicorn -c config/gunicorn.conf.py wsgi:app``."""

import logging

from redis.exceptions import RedisError

from connector.web import create_app
from connector.durability import check_durability
from connector.queue import connect

app = create_app()


def _warn_if_not_durable() -> None:
    """Said once at start (in the gunicorn master): a Redis that can lose what was acknowledged
    is the operator's to fix (README, "Redis in production"). A client of its own, closed again,
    so no connection is inherited by the forked workers."""
    client = connect(app.extensions["connector.settings"].redis_url, for_web=True)
    try:
        client.ping()
        durability = check_durability(client)
    except RedisError:
        return  # down at start: /readyz answers 503, and says the rest once it is back
    finally:
        client.close()
    if not durability.durable:
        logging.getLogger("gunicorn.error").warning("Redis durability: %s", durability.message)


_warn_if_not_durable()
