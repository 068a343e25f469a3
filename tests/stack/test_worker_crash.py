"""The demonstration scenario: a worker killed mid-stream under load.

A worker that acknowledges only after its effects are stored loses nothing; one that acks on
delivery loses what it had been sent, and the checker names the loss.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.stack, pytest.mark.chaos]

OUTAGE = os.path.join(os.path.dirname(sys.executable), "outage")


@pytest.mark.incident("worker-crash")
def test_hardened_worker_loses_nothing_when_killed(outage_run):
    result = outage_run(profile="hardened")
    assert result.verdict == "held", [c.as_dict() for c in result.failed_checks]
    assert result.messages["lost"] == 0
    assert result.messages["acked"] > 100
    assert result.timings["replay_s"] is not None


@pytest.mark.incident("worker-crash")
def test_worker_acking_before_work_is_caught_losing_messages(outage_run):
    result = outage_run(profile="vulnerable")
    assert result.verdict == "deviated"
    assert result.messages["lost"] > 0
    assert "messages.lost" in {c.name for c in result.failed_checks}


@pytest.mark.parametrize(("profile", "exit_code"), [("hardened", 0), ("vulnerable", 1)])
def test_cli_exit_code_and_report_tell_the_verdict(profile, exit_code, tmp_path: Path):
    report_dir = tmp_path / profile
    finished = subprocess.run(
        [OUTAGE, "run", "worker-crash", "--profile", profile, "--seed", "7", "--report-dir", str(report_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == exit_code, finished.stdout + finished.stderr
    summary = json.loads((report_dir / "summary.json").read_text())
    assert summary["scenario"] == "worker-crash"
    assert summary["profile"] == profile
    assert summary["seed"] == 7
    assert summary["verdict"] == ("held" if exit_code == 0 else "deviated")
    assert set(summary["messages"]) >= {
        "attempted",
        "acked",
        "failed",
        "unknown",
        "delivered",
        "lost",
        "duplicated",
        "unexpected",
        "recovered",
    }
    assert set(summary["timings"]) >= {"time_to_detect_s", "time_to_recover_s", "replay_s"}
    assert (report_dir / "timeline.jsonl").read_text().count("\n") > 5
    debrief = (report_dir / "debrief.md").read_text()
    for heading in (
        "## Overview",
        "## Timeline",
        "## Impact",
        "## What held",
        "## What failed",
        "## Action items",
    ):
        assert heading in debrief
    if exit_code == 1:
        assert "failed messages.lost" in finished.stdout
