"""The project's own game day on the wire: the worker cut off from the brokers, in both profiles.

The profiles differ only in one product setting (the worker's ack); the verdict rests on the
product's promise: no acknowledged message lost, none applied twice.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.stack, pytest.mark.chaos]


def _figures(result) -> str:
    kinds = ("acked", "delivered", "lost", "duplicated", "recovered")
    messages = {key: result.messages[key] for key in kinds}
    return f"{result.scenario} {result.profile}: {result.verdict} {messages} timings {result.timings}"


@pytest.mark.incident("half-partition")
def test_worker_cut_off_from_the_broker_loses_nothing_and_applies_nothing_twice(outage_run):
    result = outage_run(profile="hardened")
    print(_figures(result))
    assert result.verdict == "held", [c.as_dict() for c in result.failed_checks]
    assert result.messages["lost"] == 0 and result.messages["duplicated"] == 0
    assert result.messages["acked"] > 0


@pytest.mark.incident("half-partition")
def test_auto_acking_worker_is_caught_losing_what_was_on_the_cut_link(outage_run):
    result = outage_run(profile="vulnerable")
    print(_figures(result))
    assert result.verdict == "deviated"
    assert "messages.lost" in {c.name for c in result.failed_checks}
