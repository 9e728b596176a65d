"""The ingest job delivers what a webhook yields itself (issue 16), without ever sending one
activity twice: the inline claim, an existing delivery job taking precedence, the retention
setting. Real Redis, real workers, the Glu sandbox over HTTP."""

from __future__ import annotations

import pytest
from conftest import load_fixture, shopify_headers

from connector import completion
from connector.ledger import claim_inline, inline_claim_key
from connector.queue import DELIVERY_QUEUE, get_queue
from connector.settings import ConfigProblemsError, load_settings
from connector.web import create_app


def test_one_ingest_job_at_a_time_holds_an_activitys_claim(redis):
    first = claim_inline(redis, "connector:ledger:t:glu:x", "deliver-x", "rq:job:deliver-x", "ingest-a")
    assert first.inline and first.recorded is None
    other = claim_inline(redis, "connector:ledger:t:glu:x", "deliver-x", "rq:job:deliver-x", "ingest-b")
    assert not other.claimed and not other.inline  # another webhook of the same order waits for it
    again = claim_inline(redis, "connector:ledger:t:glu:x", "deliver-x", "rq:job:deliver-x", "ingest-a")
    assert again.inline  # a rerun of the same ingest job (its earlier run ended) takes it over
    assert redis.get(inline_claim_key("deliver-x")) == b"ingest-a"


def test_an_existing_delivery_job_does_the_work_and_the_claim_is_given_back(redis):
    redis.hset("rq:job:deliver-y", "status", "scheduled")
    found = claim_inline(redis, "connector:ledger:t:glu:y", "deliver-y", "rq:job:deliver-y", "ingest-a")
    assert found.job_exists and not found.inline
    assert not redis.exists(inline_claim_key("deliver-y"))


def test_a_second_webhook_of_an_order_awaiting_its_retry_leaves_it_to_the_delivery_job(settings, sandbox, work, redis):
    client = create_app(settings).test_client()
    body = load_fixture("shopify", "orders_paid")
    sandbox.sandboxes.glu.faults.arm({"mode": "status", "status": 503, "count": 1})
    assert client.post("/webhooks/harbour/shopify", data=body, headers=shopify_headers(body)).status_code == 202
    from connector import jobs

    ingest_id = get_queue(redis, "ingest").job_ids[0]
    jobs.ingest(*get_queue(redis, "ingest").fetch_job(ingest_id).args)  # inline attempt: 503, job created
    assert len(get_queue(redis, DELIVERY_QUEUE).job_ids) == 1
    again = shopify_headers(body, webhook_id="a-new-delivery-of-the-same-order")
    assert client.post("/webhooks/harbour/shopify", data=body, headers=again).status_code == 202
    work()
    glu = sandbox.sandboxes.glu.state()
    assert len(glu["activities"]) == 1 and glu["activity_posts"] == 1  # the job sent it, the second ingest did not


def test_the_finished_job_retention_is_bounded(env):
    env()
    assert load_settings().finished_job_retention == 3600  # the suite's (tests read results)
    for wrong in ("-1", "604801", "soon"):
        with pytest.raises(ConfigProblemsError, match="CONNECTOR_FINISHED_JOB_RETENTION"):
            load_settings(finished_job_retention=wrong)


def test_an_activity_named_twice_in_one_message_is_sent_once(settings, sandbox, redis):
    from test_replay import activity

    from connector import jobs

    item = activity(1)
    tenant = jobs.tenants().get("harbour")
    assert tenant is not None
    with completion.collecting() as writes:  # as in a job: the ledger writes wait for its end
        ids = jobs.follow_up(jobs.delivery_follow_ups(tenant, [item, activity(2), item]), "2026-11-25T09:00:00+00:00")
    completion.flush(redis, writes)
    assert ids == [jobs.delivery_job_id("harbour", "glu", item), jobs.delivery_job_id("harbour", "glu", activity(2))]
    glu = sandbox.sandboxes.glu.state()
    assert glu["activity_posts"] == 2 and len(glu["activities"]) == 2


def _two_webhooks_of_one_order(settings, sandbox, redis, monkeypatch, *, before_waiting=None):  # type: ignore[no-untyped-def]
    """Two webhooks of one order on two "workers" (threads) at once: the first holds the inline
    claim while its first call to Glu is slow, the second finds it held and creates the delivery
    job (``before_waiting(first_thread)`` runs just before that job is created). Returns the
    first's thread (still running) and the job's id once scheduled."""
    import threading
    import time

    from connector import jobs

    client = create_app(settings).test_client()
    body = load_fixture("shopify", "orders_paid")
    for webhook_id in ("first-delivery-of-the-order", "second-delivery-of-the-order"):
        headers = shopify_headers(body, webhook_id=webhook_id)
        assert client.post("/webhooks/harbour/shopify", data=body, headers=headers).status_code == 202
    ingest = get_queue(redis, "ingest")
    first, second = (ingest.fetch_job(job_id) for job_id in ingest.job_ids)
    sandbox.sandboxes.glu.faults.arm({"mode": "slow", "seconds": 0.3, "count": 1, "path": "/contacts"})
    running = threading.local()  # each thread runs its own ingest job, as two workers would
    real_current_job, real_create_job = jobs.get_current_job, jobs._create_job
    monkeypatch.setattr(jobs, "get_current_job", lambda: getattr(running, "job", None))

    def run(job):  # type: ignore[no-untyped-def]
        running.job = job
        jobs.ingest(*job.args)

    sending = threading.Thread(target=run, args=(first,))
    sending.start()
    deadline = time.monotonic() + 5
    while not redis.keys("connector:inline:*") and time.monotonic() < deadline:
        time.sleep(0.01)
    if before_waiting is not None:

        def late_create(*args, **kwargs):  # type: ignore[no-untyped-def]
            before_waiting(sending)
            return real_create_job(*args, **kwargs)

        monkeypatch.setattr(jobs, "_create_job", late_create)
    run(second)  # the claim is (or was just) held: the delivery job is created
    running.job = None
    monkeypatch.setattr(jobs, "get_current_job", real_current_job)
    monkeypatch.setattr(jobs, "_create_job", real_create_job)
    scheduled = redis.zrange("rq:scheduled:delivery", 0, -1)
    assert len(scheduled) == 1, scheduled
    return sending, scheduled[0]


def test_a_webhook_of_an_order_another_job_is_sending_waits_only_until_that_one_is_done(
    settings, sandbox, work, redis, monkeypatch
):
    """The second webhook's job is created for when the first's claim would expire (5 minutes),
    in case the first dies. Once the first has delivered the activity, that job is due at once
    and finds the ledger's receipt; before, it waited the 5 minutes for nothing (``make fuzz``
    gave up on such jobs)."""
    import time

    sending, job_id = _two_webhooks_of_one_order(settings, sandbox, redis, monkeypatch)
    assert redis.zscore("rq:scheduled:delivery", job_id) > time.time() + 60  # the first is still sending
    sending.join(10)
    score = redis.zscore("rq:scheduled:delivery", job_id)
    assert score is not None and score <= time.time(), score  # due now: the activity is delivered
    work()
    assert redis.zcard("rq:scheduled:delivery") == 0
    glu = sandbox.sandboxes.glu.state()
    assert len(glu["activities"]) == 1 and glu["activity_posts"] == 1


def test_a_job_created_just_after_the_first_delivered_is_due_at_once(settings, sandbox, work, redis, monkeypatch):
    """The second webhook found the claim held, but the first delivered before the second's job
    existed: the second sees the claim gone and the receipt there, and makes its job due."""
    import time

    _, job_id = _two_webhooks_of_one_order(
        settings, sandbox, redis, monkeypatch, before_waiting=lambda first: first.join(10)
    )
    score = redis.zscore("rq:scheduled:delivery", job_id)
    assert score is not None and score <= time.time(), score
    work()
    glu = sandbox.sandboxes.glu.state()
    assert len(glu["activities"]) == 1 and glu["activity_posts"] == 1


def test_a_failed_first_attempt_sets_the_waiting_job_to_its_retry(settings, sandbox, work, redis, monkeypatch):
    """The first's attempt fails (Glu 429 with Retry-After 20 on the activity): the job the second webhook created
    for the claim's expiry runs at the first's retry instead (its Retry-After included)."""
    import time

    sandbox.sandboxes.glu.faults.arm(
        {"mode": "status", "status": 429, "retry_after": 20, "count": 1, "path": "/activities"}
    )
    sending, job_id = _two_webhooks_of_one_order(settings, sandbox, redis, monkeypatch)
    sending.join(10)
    score = redis.zscore("rq:scheduled:delivery", job_id)
    assert score is not None and time.time() + 15 <= score <= time.time() + 40, score  # Retry-After 20, not 300
    assert sandbox.sandboxes.glu.state()["activities"] == []
