"""One log format for every process (web, worker, cli, sandbox), through structlog.

:func:`configure_logging` puts one handler on the root logger whose formatter is structlog's
``ProcessorFormatter``, so that every stdlib logger (the connector's, RQ's, gunicorn's, werkzeug's)
is rendered the same way, with the context bound by ``structlog.contextvars.bind_contextvars``
(``trace_id``, ``tenant``, ``source``, ``job_id``) merged in:

* ``CONNECTOR_LOG_FORMAT=json``: one JSON object per line with ``timestamp`` (ISO 8601 UTC),
  ``level``, ``process``, ``logger``, ``event`` (the message), the bound context and, for a
  record with an exception, ``exception`` (its traceback, once);
* otherwise a readable single line: ``2026-12-02T07:11:28.123Z INFO  worker  deliver … trace=…``
  (a traceback, when there is one, follows on the next lines).

Redaction stays where it was: :mod:`connector.redaction` masks configured secrets in every record
when it is created (message and traceback). Here, on top, anything email-shaped is masked
(``[email]``, also percent-encoded ones from query strings) and ANSI colour codes (RQ's, werkzeug's)
are dropped, in every field.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from connector.redaction import EMAIL, EMAIL_MASK

PROCESSES = ("web", "worker", "cli", "sandbox")
CONTEXT_KEYS = ("trace_id", "tenant", "source", "job_id")
"""The context every helper binds with ``structlog.contextvars.bind_contextvars``."""
FIELDS = (*CONTEXT_KEYS, "delivery_id", "outcome", "reason", "status", "latency_ms", "destination", "retry_in")
"""``extra=`` fields of a stdlib record that are kept (RQ passes a job's arguments as extras: not those)."""
SHORT_NAMES = {"trace_id": "trace"}
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
LEVEL_WIDTH = 5
PROCESS_WIDTH = 7


def log_format(value: str | None = None) -> str:
    """``json`` or ``text`` (``CONNECTOR_LOG_FORMAT``; anything but ``json`` is the readable one)."""
    chosen = (value if value is not None else os.environ.get("CONNECTOR_LOG_FORMAT", "")).strip().lower()
    return "json" if chosen == "json" else "text"


def clean(text: str) -> str:
    """``text`` without ANSI colour codes and with every email-shaped part masked."""
    if "\x1b" in text:
        text = ANSI.sub("", text)
    if "@" in text or "%40" in text or "\\u0040" in text:
        text = EMAIL.sub(EMAIL_MASK, text)
    return text


# --- processors ---------------------------------------------------------------------------------


def _timestamp(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """When the record was made (not when it is rendered), ISO 8601 UTC with milliseconds."""
    record = event.get("_record")
    created = record.created if isinstance(record, logging.LogRecord) else datetime.now(UTC).timestamp()
    event["timestamp"] = _record_time(created)
    return event


def _record_time(created: float) -> str:
    """``created`` (epoch seconds) as ISO 8601 UTC with milliseconds, as ``datetime`` rounds it."""
    second = int(created)
    micros = round((created - second) * 1_000_000)  # datetime.fromtimestamp's rounding
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    last_second, prefix = _LAST_SECOND[0]
    if last_second != second:
        # One strftime per second, not per line: most lines of a busy process fall in the same
        # second as the one before (the intake writes one per webhook; issue 16).
        prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _LAST_SECOND[0] = (second, prefix)  # one reference, replaced whole: safe across threads
    return f"{prefix}{micros // 1000:03d}Z"


_LAST_SECOND: list[tuple[int, str]] = [(-1, "")]


def _exception(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """A stdlib record's traceback as ``exception``: the text the redaction already masked."""
    record = event.get("_record")
    exc_text = getattr(record, "exc_text", None) if isinstance(record, logging.LogRecord) else None
    if exc_text:
        event.pop("exc_info", None)
        event["exception"] = exc_text
    return event


def _extras(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """The known ``extra=`` fields of a stdlib record (see :data:`FIELDS`)."""
    record = event.get("_record")
    if isinstance(record, logging.LogRecord):
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None and name not in event:
                event[name] = value
    return event


def _masked(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Emails masked and colour codes dropped in every text field."""
    for key, value in event.items():
        if isinstance(value, str) and not key.startswith("_"):
            event[key] = clean(value)
    return event


def _process(name: str) -> Processor:
    def add(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
        event["process"] = name
        return event

    return add


def _level(_: WrappedLogger, method: str, event: EventDict) -> EventDict:
    record = event.get("_record")
    level = record.levelname if isinstance(record, logging.LogRecord) else method
    event["level"] = "warning" if level.lower() == "warn" else level.lower()
    return event


FIRST = ("timestamp", "level", "process", "event")


def render_json(_: WrappedLogger, __: str, event: EventDict) -> str:
    """One JSON object (the public fields: ``_record`` and friends left out)."""
    public = {k: event[k] for k in FIRST if k in event}
    public.update((k, v) for k, v in event.items() if not k.startswith("_") and k not in public)
    return orjson.dumps(public, default=str).decode()


HIDDEN_IN_TEXT = {"logger", "exception", "positional_args"}


def _one_line(value: Any) -> str:
    text = str(value)
    return " ".join(text.splitlines()) if "\n" in text or "\r" in text else text


def render_text(_: WrappedLogger, __: str, event: EventDict) -> str:
    """``timestamp LEVEL process event key=value …``, one line (a traceback follows on its own lines)."""
    head = (
        f"{event.get('timestamp', '')} {str(event.get('level', '')).upper():<{LEVEL_WIDTH}} "
        f"{event.get('process', ''):<{PROCESS_WIDTH}} {_one_line(event.get('event', ''))}"
    )
    keys = [*(k for k in CONTEXT_KEYS if k in event), *(k for k in event if k not in CONTEXT_KEYS)]
    pairs = [
        f"{SHORT_NAMES.get(k, k)}={_one_line(event[k])}"
        for k in keys
        if k not in FIRST and k not in HIDDEN_IN_TEXT and not k.startswith("_") and event[k] is not None
    ]
    line = " ".join([head, *pairs])
    exception = event.get("exception")
    return f"{line}\n{exception}" if exception else line


def pre_chain(process: str) -> list[Processor]:
    """What every record goes through before it is rendered (stdlib and structlog ones alike)."""
    return [
        structlog.contextvars.merge_contextvars,
        _process(process),
        _level,
        structlog.stdlib.add_logger_name,
        _timestamp,
        _extras,
        _exception,
        structlog.processors.format_exc_info,  # a structlog-native event's exc_info, if any
        _masked,
    ]


def _context_bound() -> bool:
    """Whether any ``structlog.contextvars`` value is bound in this context (then
    ``merge_contextvars`` has something to add). structlog keeps the variables it creates in
    ``_CONTEXT_VARS``; without that mapping (another structlog), assume there is."""
    variables = getattr(structlog.contextvars, "_CONTEXT_VARS", None)
    if not isinstance(variables, dict):
        return True
    return any(variable.get(Ellipsis) is not Ellipsis for variable in variables.values())


def _skip_record_lookups() -> None:
    """Stop ``logging`` from looking up, for every record, what no line of this format shows:
    the caller's file, line and function (a walk up the stack), the thread, process and
    multiprocessing names (the logging HOWTO's "Optimization" section). Every handler of a
    process that writes the connector's format uses this formatter, which renders none of them;
    the intake's line per webhook spent a tenth of its cost on them (issue 16)."""
    logging._srcfile = None  # documented in the HOWTO
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


class ConnectorFormatter(structlog.stdlib.ProcessorFormatter):
    """The one formatter (marks the handlers :func:`configure_logging` owns)."""

    def __init__(self, process: str = "cli", fmt: str | None = None) -> None:
        renderer = render_json if log_format(fmt) == "json" else render_text
        super().__init__(
            foreign_pre_chain=pre_chain(process),
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
        self.process = process
        self.format_name = log_format(fmt)
        self.renderer = renderer
        _skip_record_lookups()

    # -- issue 16 intake: the common record rendered without the processor chain --
    def format(self, record: logging.LogRecord) -> str:
        """The record in the one format.

        A plain stdlib record (no traceback, no stack, not from a structlog logger) while nothing
        is bound with ``structlog.contextvars``, the common case and the intake's line per
        webhook, gets the event dict the chain (:func:`pre_chain`) would build, in the same key
        order, straight from the record: the chain costs several times as much (a record copy, a
        context copy, nine processors). ``tests/test_logs.py`` compares both on many records.
        """
        if record.exc_info or record.exc_text or record.stack_info or hasattr(record, "_logger") or _context_bound():
            return super().format(record)
        level = record.levelname.lower()
        event: EventDict = {
            "event": record.getMessage(),
            "process": self.process,
            "level": "warning" if level == "warn" else level,
            "logger": record.name,
            "timestamp": _record_time(record.created),
        }
        fields = record.__dict__
        for name in FIELDS:
            value = fields.get(name)
            if value is not None and name not in event:
                event[name] = value
        for key, value in event.items():
            if isinstance(value, str):
                event[key] = clean(value)
        return str(self.renderer(None, "", event))

    # -- end issue 16 intake --


def make_formatter(process: str = "web") -> ConnectorFormatter:
    """A :class:`ConnectorFormatter` (the factory gunicorn's ``logconfig_dict`` names)."""
    return ConnectorFormatter(process)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (test runners replace it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        """The current ``sys.stderr``."""
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def _owned(handler: logging.Handler) -> bool:
    return isinstance(handler.formatter, ConnectorFormatter)


def configure_logging(
    process: str, *, level: str | int | None = None, fmt: str | None = None, stream: TextIO | None = None
) -> logging.Handler:
    """Route every stdlib logger of this process through one handler in the one format.

    ``process``: ``web``, ``worker``, ``cli`` or ``sandbox``; ``level``: the root level
    (default ``CONNECTOR_LOG_LEVEL`` or INFO); ``fmt``: ``json`` or ``text`` (default
    ``CONNECTOR_LOG_FORMAT``); ``stream``: where to write (default: the current ``sys.stderr``).
    Called again, it replaces the handler it installed before (never adds a second one).
    """
    if process not in PROCESSES:
        raise ValueError(f"process must be one of {', '.join(PROCESSES)}, not {process!r}")
    chosen = level if level is not None else os.environ.get("CONNECTOR_LOG_LEVEL", "INFO")
    root = logging.getLogger()
    for previous in [h for h in root.handlers if _owned(h)]:
        root.removeHandler(previous)
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else StderrHandler()
    handler.setFormatter(ConnectorFormatter(process, fmt))
    root.addHandler(handler)
    root.setLevel(chosen.upper() if isinstance(chosen, str) else chosen)
    _route_library_loggers()
    # A structlog logger, should someone use one, becomes an ordinary stdlib record (its key-value
    # pairs as extras): the redaction's record factory and this formatter then treat it like any other.
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.stdlib.render_to_log_kwargs],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    return handler


LIBRARY_LOGGERS = ("rq", "rq.worker", "rq.scheduler", "werkzeug")


def _route_library_loggers(names: Iterable[str] = LIBRARY_LOGGERS) -> None:
    """Drop the handlers libraries installed on their own loggers (RQ's colourising ones,
    werkzeug's) so that their records reach the root handler, once."""
    for name in names:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if not _owned(handler):
                logger.removeHandler(handler)
        logger.propagate = True
