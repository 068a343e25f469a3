"""Proto 2023: a release makes the conversation list cost grow with the account; the fix's restart
releases the piled-up requests; chatbots stall; the release is rolled back.

Hardened (per-route limit with a queue timeout, deadline, pagination, drain, budgeted clients) holds
every service level; vulnerable (none of them, clients retrying at once) is caught on each symptom
the scenario names. One run per profile: the vulnerable one through the fixture, the hardened one
through the CLI, whose record `outage check` judges again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faults.scenarios.proto_2023_gateway_throttling import GatewayThrottling

pytestmark = [pytest.mark.stack, pytest.mark.chaos]

SCENARIO = "proto-2023-gateway-throttling"
OUTAGE = os.path.join(os.path.dirname(sys.executable), "outage")


@pytest.mark.incident(SCENARIO)
def test_vulnerable_release_is_caught_slowing_everyone_spiking_on_restart_and_stalling_bots(outage_run):
    result = outage_run(profile="vulnerable")
    assert result.verdict == "deviated"
    failed = {c.name for c in result.failed_checks}
    assert set(GatewayThrottling.vulnerable_symptoms) <= failed
    assert result.messages["lost"] == 0  # slow and refused, but nothing acknowledged goes missing


@pytest.mark.incident(SCENARIO)
def test_hardened_run_through_the_cli_exits_0_and_its_record_is_judged_held_again(tmp_path: Path):
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
    assert summary["messages"]["lost"] == 0
    assert {"steady_rate_per_s", "restart_peak_rate_per_s", "not_ok_by_size", "store_load_by_phase"} <= set(
        summary["metrics"]
    )
    again = subprocess.run([OUTAGE, "check", str(report_dir)], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
