"""Proto 2023: a release makes the conversation list cost grow with the account; the fix's restart
releases the piled-up requests; chatbots stall; the release is rolled back.

Hardened (per-route limit with a queue timeout, deadline, pagination, drain, budgeted clients) holds
every service level; vulnerable (none of them, clients retrying at once) is caught on each symptom.
Three runs in all: each profile through the fixture, and the hardened one again through the CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.stack, pytest.mark.chaos]

SCENARIO = "proto-2023-gateway-throttling"
OUTAGE = os.path.join(os.path.dirname(sys.executable), "outage")


@pytest.mark.incident(SCENARIO)
def test_hardened_api_and_clients_keep_every_agent_and_the_chatbot_served(outage_run):
    result = outage_run(profile="hardened")
    assert result.verdict == "held", [c.as_dict() for c in result.failed_checks]
    assert result.messages["lost"] == 0
    gateway = result.metrics["gateway"]
    assert gateway["restart_peak_ratio"] <= 2.0
    assert gateway["chatbot"]["longest_gap_s"] <= 5.0


@pytest.mark.incident(SCENARIO)
def test_vulnerable_release_is_caught_slowing_everyone_spiking_on_restart_and_stalling_bots(outage_run):
    result = outage_run(profile="vulnerable")
    assert result.verdict == "deviated"
    failed = {c.name for c in result.failed_checks}
    assert {"ordinary_agents.p99", "restart.request_rate", "chatbot.longest_gap"} <= failed
    assert "large_accounts.first_page" in failed
    assert result.messages["lost"] == 0  # slow and refused, but nothing acknowledged goes missing
    assert result.metrics["gateway"]["restart_peak_ratio"] > 2.0


@pytest.mark.incident(SCENARIO)
def test_cli_exits_0_for_a_held_run_and_its_report_carries_the_figures(tmp_path: Path):
    report_dir = tmp_path / "hardened"
    finished = subprocess.run(
        [OUTAGE, "run", SCENARIO, "--profile", "hardened", "--report-dir", str(report_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    summary = json.loads((report_dir / "summary.json").read_text())
    assert summary["verdict"] == "held"
    gateway = summary["metrics"]["gateway"]
    assert {"steady_rate_per_s", "restart_peak_rate_per_s", "over_time", "not_ok_by_outcome", "redis"} <= set(
        gateway
    )
    assert {row["size"] for row in gateway["over_time"]} == {"ordinary", "large"}
