"""gunicorn's logger for the web tier: the access log only when ``CONNECTOR_ACCESS_LOG`` asks for it.

gunicorn writes access lines whenever a ``logconfig_dict`` is set, and ``config/gunicorn.conf.py``
sets one for every process's format: so the access log was on although unset means off (its
documented default), and building and writing the line cost the intake about a sixth of its CPU
per webhook (py-spy, issue 16). ``config/gunicorn.conf.py`` names this class as ``logger_class``.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger


class ConnectorGunicornLogger(Logger):  # type: ignore[misc]  # gunicorn is unannotated
    """gunicorn's logger, with the access log off unless ``accesslog`` (CONNECTOR_ACCESS_LOG) is set."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """One access line, when an access log is configured."""
        if self.cfg.accesslog is None:
            return
        super().access(resp, req, environ, request_time)
