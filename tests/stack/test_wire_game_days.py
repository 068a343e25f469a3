"""The project's own game days on the wire: the worker cut off from the brokers, and a lossy,
resetting link between the relay and the brokers, in both profiles.

The profiles differ only in one product setting (the worker's ack, the relay's confirms); the
verdict rests on the product's promise: no acknowledged message lost, none applied twice.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.stack, pytest.mark.chaos]


def _figures(result) -> str:
    kinds = ("acked", "delivered", "lost", "duplicated", "recovered")
    messages = {key: result.messages[key] for key in kinds}
    return f"{result.scenario} {result.profile}: {result.verdict} {messages} timings {result.timings}"


def _held_losing_nothing_and_applying_nothing_twice(result) -> None:
    print(_figures(result))
    assert result.verdict == "held", [c.as_dict() for c in result.failed_checks]
    assert result.messages["lost"] == 0 and result.messages["duplicated"] == 0
    assert result.messages["acked"] > 0


def _caught_losing_acknowledged_messages(result) -> None:
    print(_figures(result))
    assert result.verdict == "deviated"
    assert "messages.lost" in {c.name for c in result.failed_checks}


@pytest.mark.incident("half-partition")
def test_worker_cut_off_from_the_broker_loses_nothing_and_applies_nothing_twice(outage_run):
    _held_losing_nothing_and_applying_nothing_twice(outage_run(profile="hardened"))


@pytest.mark.incident("half-partition")
def test_auto_acking_worker_is_caught_losing_what_was_on_the_cut_link(outage_run):
    _caught_losing_acknowledged_messages(outage_run(profile="vulnerable"))


@pytest.mark.incident("lossy-link")
def test_relay_with_confirms_keeps_every_acknowledged_message_over_a_lossy_link(outage_run):
    _held_losing_nothing_and_applying_nothing_twice(outage_run(profile="hardened"))


@pytest.mark.incident("lossy-link")
def test_relay_without_confirms_is_caught_losing_what_a_lossy_link_reset_in_its_send_buffer(outage_run):
    _caught_losing_acknowledged_messages(outage_run(profile="vulnerable"))
