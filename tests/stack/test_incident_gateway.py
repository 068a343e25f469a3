"""Proto 2023: a release makes the conversation list cost grow with the account; the fix's restart
releases the piled-up requests; chatbots stall; the release is rolled back.

Hardened (a per-route limit with a queue timeout, one read in flight per agent, a deadline with a
cooldown that outlives a restart, a drain, budgeted web-app retries) holds every service level;
vulnerable (none of them, the web app retrying at once) is caught on each symptom the scenario
names. Both face the same release (whole lists, one round trip per conversation) and the same
chatbots. Two runs in all, one per profile.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faults.scenarios.proto_2023_gateway_throttling import GatewayThrottling
from harness.checks.recheck import recheck
from harness.interfaces.pytest_plugin import report_root

# Ordinary agents' latency is judged to 300 ms: both profiles run with the machine to themselves and
# the other workers' stacks frozen (beside an idle neighbour stack the hardened api's 300 ms promise
# was missed in three runs of three: harness/stack/neighbours.py).
pytestmark = [pytest.mark.stack, pytest.mark.chaos, pytest.mark.alone(neighbours="frozen")]

SCENARIO = "proto-2023-gateway-throttling"


@pytest.mark.incident(SCENARIO)
def test_hardened_api_and_clients_keep_every_agent_and_the_chatbot_served(outage_run, request):
    result = outage_run(profile="hardened")
    assert result.verdict == "held", [c.as_dict() for c in result.failed_checks]
    assert result.messages["lost"] == 0

    # The report carries the figures behind the verdict, and its record is judged the same again.
    report_dir = Path(result.details["report_dir"])
    summary = json.loads((report_dir / "summary.json").read_text())
    assert summary["verdict"] == "held"
    assert {"steady_rate_per_s", "restart_peak_rate_per_s", "not_ok_by_size", "store_load_by_phase"} <= set(
        summary["metrics"]
    )
    assert recheck(report_dir).result.verdict == "held"
    # The run is visible to pytest: its verdict and report are properties of this test.
    assert ("outage_verdict", "held") in request.node.user_properties
    assert ("outage_report_dir", result.details["report_dir"]) in request.node.user_properties
    kept = report_root(request.config)  # `make test` keeps the reports for CI
    if kept is not None:
        assert Path(result.details["report_dir"]).parent == kept


@pytest.mark.incident(SCENARIO)
def test_vulnerable_release_is_caught_slowing_everyone_spiking_on_restart_and_stalling_bots(outage_run):
    result = outage_run(profile="vulnerable")
    assert result.verdict == "deviated"
    failed = {c.name for c in result.failed_checks}
    assert set(GatewayThrottling.vulnerable_symptoms) <= failed
    assert result.messages["lost"] == 0  # slow and refused, but nothing acknowledged goes missing
