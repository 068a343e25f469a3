"""Help Scout 2017: a bulk action floods the shared event queues (helpscout-2017-event-flood).

Test size: a view of 100,000 tickets, one event each. Each run seeds, floods and drains that
view, so the file runs each profile once. The full-size run (300,000) is bench/event_flood_bench.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faults.scenarios.helpscout_2017_event_flood import EventFlood

# Alone: the checks are latency promises, and the flood takes both cores; a neighbour's run would
# be measured too. The neighbours stay idle, not paused: the vulnerable flood trips the broker's
# memory alarm only when the worker drains slower than the api floods, and with the whole machine to
# itself it did not always (with a paused neighbour 68 s in, with none not at all in 120 s): the
# scale model's trigger depends on the machine (the scenario's .md, fact 4).
pytestmark = [
    pytest.mark.stack,
    pytest.mark.chaos,
    pytest.mark.alone,
    pytest.mark.incident("helpscout-2017-event-flood"),
]


def _failed(result) -> set[str]:
    return {check.name for check in result.checks if not check.passed}


def test_hardened_bulk_events_take_their_own_bounded_lane_and_normal_traffic_keeps_its_service(outage_run):
    result = outage_run(profile="hardened")
    assert result.verdict == "held", _failed(result)
    assert result.messages["lost"] == 0


def test_vulnerable_flood_trips_the_memory_alarm_and_is_caught(outage_run):
    result = outage_run(profile="vulnerable")
    assert result.verdict == "deviated"
    summary = json.loads((Path(result.details["report_dir"]) / "summary.json").read_text())
    assert summary["verdict"] == "deviated"
    failed = {check["name"] for check in summary["checks"] if not check["passed"]}
    # What the postmortem's users saw: ordinary message posts fail or time out while the broker
    # blocks its publishers.
    assert set(EventFlood.vulnerable_symptoms) <= failed
    assert "normal_traffic_errors_during_flood" in failed
    assert summary["metrics"]["runbook_applied"] == "yes"
