"""Gorgias 2021: the queue cluster down on every node, stuck on restart, then the runbook.

Odd seeds stop the nodes one by one and start them in the wrong order; even seeds kill all three
at once. With an outbox the api keeps accepting messages and serving reads, and the relay replays
the backlog once the cluster is back. Publishing from the request with retries takes every call
down with the broker, reads included; an acknowledged message it loses on the way (when one is in
flight as a node shuts down) is named by the path that lost it.

Three runs: the killed-at-once variant hardened, and the stop-one-by-one variant in each profile.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.checks.checker import lost_paths
from harness.engine.scenario import scenario_class
from harness.record.record import Record

pytestmark = [pytest.mark.stack, pytest.mark.chaos]

SCENARIO = "gorgias-2021-queue-cluster-down"


def _record(result) -> Record:
    return Record.load(Path(result.details["report_dir"]))


def _messages(record: Record) -> list[str]:
    return [event.message for event in record.timeline]


@pytest.mark.incident(SCENARIO)
def test_nodes_killed_at_once_come_back_through_force_boot_and_the_outbox_loses_nothing(outage_run):
    result = outage_run(profile="hardened", seed=2)
    record, scenario = _record(result), scenario_class(SCENARIO)()

    assert result.verdict == "held", [c.as_dict() for c in result.failed_checks]
    assert record.mark("brokers_down").data["variant"] == "killed-at-once"
    assert result.messages["lost"] == 0 and result.messages["duplicated"] == 0
    # The relay starts replaying as soon as one node serves again, often before all three are back.
    assert scenario.backlog_when_first_node_serves(record) > 0, "the outage should leave a backlog"
    assert result.timings["replay_s"] <= 60
    messages = _messages(record)
    assert any(
        m.startswith("first sign of the stuck state: rabbit1 logs 'Waiting for Mnesia tables")
        for m in messages
    )
    assert any("rabbit1 gave up waiting for its peers' tables" in m for m in messages)
    assert any("force_boot on rabbit1" in m for m in messages)


@pytest.mark.incident(SCENARIO)
@pytest.mark.parametrize("profile", ["hardened", "vulnerable"])
def test_verdicts_for_nodes_stopped_one_by_one_and_started_in_the_wrong_order(profile: str, outage_run):
    result = outage_run(profile=profile, seed=1)
    record, scenario = _record(result), scenario_class(SCENARIO)()
    status = {c.name: c.status for c in result.checks}

    assert record.mark("brokers_down").data["variant"] == "stop-one-by-one"
    assert status["broker.stuck_state"] == "passed", "both profiles must reproduce the stuck cluster"
    assert scenario.outage_s(record) >= 30
    assert result.timings["time_to_recover_s"] is not None
    messages = _messages(record)
    for node in ("rabbit1", "rabbit2", "rabbit3"):
        assert f"{node} stopped (orderly shutdown)" in messages
    assert "rabbit3 is the node that stopped last (nodes_running_at_shutdown lists only itself)" in messages

    if profile == "hardened":
        assert result.verdict == "held", [c.as_dict() for c in result.failed_checks]
        assert result.messages["lost"] == 0 and result.messages["duplicated"] == 0
        assert status["api.reads_during_outage"] == "passed"
    else:
        assert result.verdict == "deviated"
        failed = {name for name, state in status.items() if state == "failed"}
        assert set(scenario.vulnerable_symptoms) <= failed, failed
        # Every acknowledged message lost (if one was in flight) is named by the path that lost it.
        paths = lost_paths(record.history, scenario.message_op_kinds)
        assert sum(paths.values()) == result.messages["lost"], paths
