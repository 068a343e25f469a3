"""Proto 2023: a release makes the conversation list cost grow with the account; the fix's restart
releases the piled-up requests; chatbots stall; the release is rolled back.

Hardened (per-route limit with a queue timeout, deadline, pagination, drain, budgeted clients) holds
every service level; vulnerable (none of them, clients retrying at once) is caught on each symptom.
Two runs in all, one per profile.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.interfaces.pytest_plugin import report_root

pytestmark = [pytest.mark.stack, pytest.mark.chaos]

SCENARIO = "proto-2023-gateway-throttling"


@pytest.mark.incident(SCENARIO)
def test_hardened_api_and_clients_keep_every_agent_and_the_chatbot_served(outage_run, request):
    result = outage_run(profile="hardened")
    assert result.verdict == "held", [c.as_dict() for c in result.failed_checks]
    assert result.messages["lost"] == 0
    gateway = result.metrics["gateway"]
    assert gateway["restart_peak_ratio"] <= 2.0
    assert gateway["chatbot"]["longest_gap_s"] <= 5.0

    # The report carries the figures behind the verdict.
    summary = json.loads((Path(result.details["report_dir"]) / "summary.json").read_text())
    assert summary["verdict"] == "held"
    gateway = summary["metrics"]["gateway"]
    assert {"steady_rate_per_s", "restart_peak_rate_per_s", "over_time", "not_ok_by_outcome", "redis"} <= set(
        gateway
    )
    assert {row["size"] for row in gateway["over_time"]} == {"ordinary", "large"}
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
    assert {"ordinary_agents.p99", "restart.request_rate", "chatbot.longest_gap"} <= failed
    assert "large_accounts.first_page" in failed
    assert result.messages["lost"] == 0  # slow and refused, but nothing acknowledged goes missing
    assert result.metrics["gateway"]["restart_peak_ratio"] > 2.0
