"""One log format for every process (connector/logs.py): JSON lines or one readable line per
record, the bound context in every stdlib record, secrets and emails masked; a retry is one line;
the intake logs one line per webhook; gunicorn's and RQ's loggers go through it."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import structlog
from conftest import load_fixture, shopify_headers
from rq.logutils import green

from connector import logs, redaction
from connector.embedded_redis import free_port
from connector.queue import DELIVERY_QUEUE, get_queue

ROOT = Path(__file__).resolve().parents[1]
BODY = load_fixture("shopify", "orders_paid")
URL = "/webhooks/harbour/shopify"
SECRET = "s3cret-for-the-log-test"
ANSI_ESCAPE = "\x1b["


@pytest.fixture
def captured():
    """The one handler writing to a buffer, in the format asked for; the context cleared after."""
    buffers: list[io.StringIO] = []

    def configure(fmt: str, process: str = "worker") -> io.StringIO:
        buffer = io.StringIO()
        logs.configure_logging(process, fmt=fmt, stream=buffer, level="INFO")
        buffers.append(buffer)
        return buffer

    yield configure
    structlog.contextvars.clear_contextvars()
    logs.configure_logging("cli", level="WARNING")


def records(buffer: io.StringIO) -> list[dict]:
    """Every line of a JSON log, parsed (fails on any line that is not one JSON object)."""
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_bound_context_appears_in_stdlib_records(captured):
    buffer = captured("json")
    structlog.contextvars.bind_contextvars(trace_id="ingest-abc", tenant="harbour", source="shopify", job_id="j-1")
    logging.getLogger("connector.jobs").info("deliver %s", "purchase")
    logging.getLogger("rq.worker").warning("from RQ")
    structlog.contextvars.clear_contextvars()
    logging.getLogger("connector.jobs").info("unbound")
    first, second, third = records(buffer)
    for record in (first, second):
        assert {k: record[k] for k in ("trace_id", "tenant", "source", "job_id")} == {
            "trace_id": "ingest-abc",
            "tenant": "harbour",
            "source": "shopify",
            "job_id": "j-1",
        }
    assert first["event"] == "deliver purchase" and first["level"] == "info" and first["process"] == "worker"
    assert first["logger"] == "connector.jobs" and second["logger"] == "rq.worker" and second["level"] == "warning"
    assert first["timestamp"].endswith("Z") and first["timestamp"][:4].isdigit() and "T" in first["timestamp"]
    assert "trace_id" not in third


def test_readable_format_names_the_context_on_one_line(captured):
    buffer = captured("text", process="web")
    structlog.contextvars.bind_contextvars(trace_id="ingest-abc", tenant="harbour")
    logging.getLogger("connector.x").warning("two\nlines")
    line = buffer.getvalue()
    assert line.count("\n") == 1
    timestamp, level, process, *rest = line.split()
    assert timestamp.endswith("Z") and level == "WARNING" and process == "web"
    assert " ".join(rest) == "two lines trace=ingest-abc tenant=harbour"


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_secret_and_email_are_masked_in_both_formats(captured, fmt):
    redaction.install_log_redaction([SECRET])
    try:
        buffer = captured(fmt)
        log = logging.getLogger("connector.test")
        log.info("key %s for guest@example.com or guest%%40example.com", SECRET)
        try:
            raise ValueError(f"bad key {SECRET} of someone@example.org")
        except ValueError:
            log.exception("failed with %s", SECRET)
    finally:
        redaction.install_log_redaction([])
    text = buffer.getvalue()
    assert SECRET not in text and "example.com" not in text and "example.org" not in text, text
    assert text.count("[redacted]") >= 3 and text.count("[email]") >= 3, text
    if fmt == "json":
        message, failure = records(buffer)
        assert message["event"] == "key [redacted] for [email] or [email]"
        assert failure["exception"].count("Traceback") == 1 and "ValueError" in failure["exception"]


def test_readable_format_has_no_colour_codes_and_one_line_per_record(captured):
    buffer = captured("text")
    logging.getLogger("rq.worker").warning("Worker w: %s: %s", green("delivery"), "job-1")  # RQ colours
    logging.getLogger("werkzeug").info('"GET / HTTP/1.1" \x1b[32m200\x1b[0m -')  # werkzeug's
    logging.getLogger("connector.x").info("a\nmulti-line\r\nmessage")
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 3
    assert not [line for line in lines if ANSI_ESCAPE in line]
    assert lines[0].endswith("Worker w: delivery: job-1") and lines[1].endswith('"GET / HTTP/1.1" 200 -')
    assert lines[2].endswith("a multi-line message")


def test_only_one_handler_however_often_it_is_configured(captured):
    captured("text")
    buffer = captured("json")
    logs.configure_logging("web", fmt="json", stream=buffer)
    logging.getLogger("connector.x").warning("once")
    assert len(records(buffer)) == 1
    owned = [h for h in logging.getLogger().handlers if isinstance(h.formatter, logs.ConnectorFormatter)]
    assert len(owned) == 1


def test_library_handlers_are_dropped_so_rq_logs_once(captured):
    from rq.logutils import setup_loghandlers

    stray = logging.StreamHandler(io.StringIO())
    logging.getLogger("rq.worker").addHandler(stray)
    buffer = captured("json")
    assert stray not in logging.getLogger("rq.worker").handlers
    setup_loghandlers("INFO")  # what Worker.work(logging_level=…) calls: no handler of its own now
    assert not logging.getLogger("rq.worker").handlers
    logging.getLogger("rq.worker").info("once")
    assert [r["event"] for r in records(buffer)] == ["once"]


# --- the intake's line --------------------------------------------------------------------------


def test_intake_logs_one_line_per_webhook_with_its_outcome(client, captured):
    buffer = captured("json", process="web")
    accepted = client.post(URL, data=BODY, headers=shopify_headers(BODY, webhook_id="d-1"))
    duplicate = client.post(URL, data=BODY, headers=shopify_headers(BODY, webhook_id="d-1"))
    forged = client.post(URL, data=BODY, headers={**shopify_headers(BODY), "X-Shopify-Hmac-Sha256": "AAAA"})
    unknown = client.post("/webhooks/nobody/shopify", data=BODY, headers=shopify_headers(BODY))
    assert (accepted.status_code, duplicate.status_code, forged.status_code, unknown.status_code) == (
        202,
        200,
        401,
        404,
    )
    lines = [r for r in records(buffer) if r["logger"] == "connector.intake"]
    assert [(r["outcome"], r["status"], r.get("reason")) for r in lines] == [
        ("accepted", 202, None),
        ("duplicate", 200, None),
        ("rejected", 401, "invalid_signature"),
        ("rejected", 404, "unknown_tenant"),
    ]
    job = accepted.json["job"]
    assert lines[0]["trace_id"] == job and lines[1]["trace_id"] == job  # the trace: the ingest job
    assert lines[0]["delivery_id"] == "d-1" and lines[0]["tenant"] == "harbour" and lines[0]["source"] == "shopify"
    assert all(r["latency_ms"] > 0 for r in lines)
    assert lines[0]["event"].startswith("webhook accepted harbour/shopify 202 in ")
    assert lines[3]["tenant"] == "nobody"


def test_intake_logs_nothing_above_info(client, captured):
    buffer = captured("json", process="web")
    logging.getLogger().setLevel(logging.WARNING)
    assert client.post(URL, data=BODY, headers=shopify_headers(BODY)).status_code == 202
    assert buffer.getvalue() == ""


# --- real processes -------------------------------------------------------------------------


def run_worker_process(fmt: str = "json", wait: float = 5.0) -> str:
    """``connector worker --burst`` in its own process (the test environment's settings); its output."""
    env = {**os.environ, "CONNECTOR_LOG_FORMAT": fmt, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "connector.cli", "worker", "--burst", "--wait-retries", str(wait)]
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def parse_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_a_worker_run_is_json_lines_and_a_retry_is_one_line(client, sandbox):
    sandbox.sandboxes.glu.faults.arm({"mode": "status", "status": 503, "path": "/activities"})
    assert client.post(URL, data=BODY, headers=shopify_headers(BODY)).status_code == 202
    output = run_worker_process("json")
    lines = parse_lines(output)  # every line is one JSON object
    assert lines and all(r["process"] == "worker" and r["timestamp"] and r["level"] for r in lines)
    retries = [r for r in lines if r["event"].startswith("retrying ")]
    assert len(retries) == 1, output
    assert retries[0]["level"] == "warning" and "glu answered 503" in retries[0]["event"]
    assert retries[0]["event"].startswith("retrying deliver ") and " in 0 s: " in retries[0]["event"]
    assert "Traceback" not in output and not [r for r in lines if "exception" in r]
    assert len(sandbox.sandboxes.glu.state()["activities"]) == 1  # and then delivered


def test_a_final_failure_is_one_line_readable(client, sandbox):
    sandbox.sandboxes.glu.faults.arm({"mode": "status", "status": 400, "path": "/activities"})
    assert client.post(URL, data=BODY, headers=shopify_headers(BODY)).status_code == 202
    output = run_worker_process("text")
    failed = [line for line in output.splitlines() if " failed deliver " in line]
    assert len(failed) == 1 and " ERROR " in failed[0] and "glu answered 400" in failed[0], output
    assert "Traceback" not in output and ANSI_ESCAPE not in output
    assert all(line[:4].isdigit() and line.split()[2] == "worker" for line in output.splitlines()), output


def test_an_unexpected_exception_keeps_its_traceback_once(settings, redis):
    get_queue(redis, DELIVERY_QUEUE).enqueue(
        "connector.jobs.deliver", args=({"tenant": "harbour", "not": "an activity"}, "glu"), meta={"trace": "ingest-t"}
    )
    output = run_worker_process("json")
    lines = parse_lines(output)
    failed = [r for r in lines if r["event"].startswith("failed ")]
    assert len(failed) == 1 and "ValidationError" in failed[0]["event"], output
    assert failed[0]["level"] == "error" and failed[0]["exception"].count("Traceback (most recent call last)") == 1
    assert output.count("Traceback (most recent call last)") == 1
    # RQ handles the failure after the job's context is cleared: the line still names its trace
    assert failed[0]["trace_id"] == "ingest-t" and failed[0]["tenant"] == "harbour" and failed[0]["job_id"]


def _gunicorn_answer(tmp_path: Path, webhook_id: str, **env: str) -> tuple[requests.Response, str]:
    """One signed webhook (its URL carrying two email addresses) through gunicorn with the
    project's config, one worker and ``env``: the answer and everything the server printed."""
    port = free_port()
    out = tmp_path / "gunicorn.log"
    full_env = {
        **{k: v for k, v in os.environ.items() if k != "CONNECTOR_ACCESS_LOG"},
        "PYTHONPATH": str(ROOT),
        "CONNECTOR_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        **env,
    }
    argv = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "config" / "gunicorn.conf.py"), "wsgi:app"]
    with out.open("w") as sink:
        proc = subprocess.Popen(argv, env=full_env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    requests.get(f"{base}/healthz", timeout=1)
                    break
                except requests.ConnectionError:
                    assert time.monotonic() < deadline and proc.poll() is None, out.read_text()
                    time.sleep(0.1)
            answer = requests.post(
                f"{base}{URL}?guest=guest@example.com&also=guest%40example.com",
                data=BODY,
                headers=shopify_headers(BODY, webhook_id=webhook_id),
                timeout=10,
            )
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    return answer, out.read_text()


def test_gunicorn_writes_json_lines_and_its_access_log_has_no_email(tmp_path, settings, redis_url):
    answer, text = _gunicorn_answer(tmp_path, "gunicorn-1", CONNECTOR_ACCESS_LOG="-", CONNECTOR_LOG_FORMAT="json")
    assert answer.status_code == 202
    lines = parse_lines(text)  # gunicorn's own lines, the access log and the connector's: all JSON
    assert {r["process"] for r in lines} == {"web"}
    loggers = {r["logger"] for r in lines}
    assert {"gunicorn.error", "gunicorn.access", "connector.intake"} <= loggers, text
    intake = [r for r in lines if r["logger"] == "connector.intake" and r["delivery_id"] == "gunicorn-1"]
    assert len(intake) == 1 and intake[0]["trace_id"] == answer.json()["job"]
    access = [r for r in lines if r["logger"] == "gunicorn.access" and URL in r["event"]]
    assert len(access) == 1 and "guest=[email]&also=[email]" in access[0]["event"], access
    assert "example.com" not in text


def test_intake_line_of_a_forged_url_stays_one_line(client, captured):
    buffer = captured("text", process="web")
    assert client.post("/webhooks/bad%0Atenant%0D/shopify", data=BODY, headers=shopify_headers(BODY)).status_code == 404
    assert client.post("/webhooks/harbour", data=BODY).status_code == 404  # no route at all
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "webhook rejected bad tenant /shopify 404 (unknown_tenant)" in lines[0]
    assert "webhook rejected harbour/ 404 (not_found)" in lines[1]


def test_the_trace_id_goes_from_the_intake_line_to_the_delivery_lines(client, sandbox, captured):
    """One trace id from the intake's line to the delivery's: the retry line and the delivery
    job's own lines (bound by the trace's job context) carry the 202's job."""
    buffer = captured("json", process="web")
    sandbox.sandboxes.glu.faults.arm({"mode": "status", "status": 503, "path": "/activities"})
    accepted = client.post(URL, data=BODY, headers=shopify_headers(BODY, webhook_id="trace-1"))
    assert accepted.status_code == 202
    trace = accepted.json["job"]
    [intake] = [r for r in records(buffer) if r["logger"] == "connector.intake"]
    assert intake["trace_id"] == trace
    lines = parse_lines(run_worker_process("json"))
    traced = [r for r in lines if r.get("trace_id") == trace]
    retry = [r for r in traced if r["event"].startswith("retrying deliver ")]
    assert len(retry) == 1 and retry[0]["tenant"] == "harbour" and retry[0]["source"] == "shopify"
    job_ids = {r.get("job_id") for r in traced if r.get("job_id")}
    assert any(j.startswith("deliver-") for j in job_ids), job_ids  # the delivery job's own lines
    assert not [r for r in lines if r.get("job_id", "").startswith("deliver-") and r.get("trace_id") != trace]
    assert len(sandbox.sandboxes.glu.state()["activities"]) == 1


# -- issue 16 intake: the formatter's direct path renders exactly what the processor chain does --
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_direct_path_renders_every_plain_record_as_the_processor_chain_does(fmt):
    formatter = logs.ConnectorFormatter("web", fmt)
    cases: list[tuple[int, str, tuple, dict]] = [
        (
            logging.INFO,
            "webhook %s %s/%s %s%s in %.1f ms",
            ("accepted", "harbour", "shopify", 202, "", 1.25),
            {
                "tenant": "harbour",
                "source": "shopify",
                "delivery_id": "d-1",
                "outcome": "accepted",
                "reason": None,
                "status": 202,
                "latency_ms": 1.25,
                "trace_id": "ingest-abc",
            },
        ),
        (logging.WARNING, "guest %s wrote\nline two\r\n", ("ada@example.com",), {"reason": "to bob%40example.com"}),
        (logging.ERROR, green("coloured") + " %d", (3,), {"retry_in": 60, "destination": "glu", "job_id": "j"}),
        (logging.DEBUG, "no args %s", (), {"unknown_extra": "not kept", "tenant": ""}),
        (logging.INFO, "%(a)s mapped", ({"a": "x\\u0040y.example.org"},), {}),
    ]
    for level, message, args, extra in cases:
        record = logging.LogRecord("connector.intake", level, __file__, 1, message, args or None, None)
        record.__dict__.update(extra)
        record.created = 1_790_000_000.123456
        chain = structlog.stdlib.ProcessorFormatter.format(formatter, record)  # the chain itself
        direct = formatter.format(record)
        assert direct == chain, (direct, chain)
        assert "example.com" not in direct and ANSI_ESCAPE not in direct


def test_a_bound_context_or_a_traceback_still_goes_through_the_chain(captured):
    buffer = captured("json")
    structlog.contextvars.bind_contextvars(trace_id="ingest-ctx")
    logging.getLogger("connector.jobs").info("bound")
    structlog.contextvars.clear_contextvars()
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("connector.jobs").exception("failed")
    bound, failed = records(buffer)
    assert bound["trace_id"] == "ingest-ctx"
    assert "ValueError: boom" in failed["exception"] and "trace_id" not in failed


# -- end issue 16 intake --


# -- issue 16 intake: the access log is off unless CONNECTOR_ACCESS_LOG is set (its documented default) --
def test_gunicorn_writes_no_access_line_unless_asked(tmp_path, settings, redis_url):
    answer, text = _gunicorn_answer(tmp_path, "gunicorn-2", CONNECTOR_LOG_FORMAT="json")
    assert answer.status_code == 202
    lines = parse_lines(text)
    assert [r["delivery_id"] for r in lines if r["logger"] == "connector.intake"] == ["gunicorn-2"], text
    assert not [r for r in lines if r["logger"] == "gunicorn.access"], text


# -- end issue 16 intake --


def test_records_skip_the_lookups_no_line_shows() -> None:
    """Once the connector's formatter is made, a record carries no caller, thread or process
    lookups (issue 16: a tenth of the intake line's cost), and its line is unchanged."""
    subprocess_code = (
        "import io, logging\n"
        "from connector.logs import configure_logging\n"
        "stream = io.StringIO()\n"
        "configure_logging('web', fmt='text', stream=stream)\n"
        "seen = []\n"
        "class Keep(logging.Handler):\n"
        "    def emit(self, record): seen.append(record)\n"
        "logging.getLogger().addHandler(Keep())\n"
        "logging.getLogger('connector.intake').info('webhook %s', 'accepted', extra={'tenant': 't'})\n"
        "record = seen[0]\n"
        "print(record.funcName, record.lineno, record.threadName, record.process, record.processName)\n"
        "print(stream.getvalue().split(' ', 1)[1].strip())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", subprocess_code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.splitlines()
    assert out[0] == "(unknown function) 0 None None None", out
    assert out[1] == "INFO  web     webhook accepted tenant=t", out


def test_the_record_time_is_datetimes_to_the_millisecond_with_one_strftime_a_second() -> None:
    """The timestamp of every line is what ``datetime.fromtimestamp`` gives, rounding included,
    though the text up to the second is kept from the line before (issue 16): checked on random
    times, on sub-microsecond rounding edges, and going back and forth across seconds."""
    import random
    from datetime import UTC, datetime

    from connector.logs import _record_time

    def expected(created: float) -> str:
        moment = datetime.fromtimestamp(created, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    rng = random.Random(16)
    times = [rng.uniform(0, 4e9) for _ in range(2000)]
    base = 1_764_812_345
    times += [base + k / 1e6 + e for k in range(0, 2_000_000, 9973) for e in (0, 4.9e-7, 5e-7, 5.1e-7)]
    times += [base + 0.9999995, base + 0.9999996, base + 1.0, base + 0.5, base + 1.5, base + 0.25, float(base)]
    for created in times:
        assert _record_time(created) == expected(created), created
