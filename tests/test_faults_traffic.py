"""The fault suite's traffic never cuts a business event in two at the end of a run (a stay's
three events are all sent, or none): its expectations match what is sent."""

from __future__ import annotations

from collections import Counter

import pytest

from faults.traffic import Traffic


@pytest.mark.parametrize("seed", range(12))
def test_every_expectation_has_all_its_webhooks(seed):
    traffic = Traffic(count=200, seed=seed)
    sizes = Counter(webhook.expect for webhook in traffic.webhooks)
    assert all(sizes[expect] == expect[2] for expect in sizes), [e for e in sizes if sizes[e] != e[2]]
    assert 198 <= len(traffic.webhooks) <= 200
