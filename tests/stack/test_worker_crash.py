"""The demonstration scenario: a worker killed mid-stream under load, run through the `outage`
command as a CI job runs it.

A worker that acknowledges only after its effects are stored loses nothing; one that acks on
delivery loses what it had been sent, and the checker names the loss. This is the fastest
scenario, so the CLI's contract is tested here, once: exit codes, report files, `--json` and
`--junit-xml`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = [pytest.mark.stack, pytest.mark.chaos]

OUTAGE = os.path.join(os.path.dirname(sys.executable), "outage")
DEBRIEF_HEADINGS = (
    "## Overview",
    "## Timeline",
    "## Impact",
    "## What held",
    "## What failed",
    "## Action items",
)


def _outage_run(profile: str, report_dir: Path, junit: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [OUTAGE, "run", "worker-crash", "--profile", profile, "--seed", "7"]
    command += ["--report-dir", str(report_dir), "--junit-xml", str(junit), *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def _check_report_files(report_dir: Path, profile: str, verdict: str) -> dict:
    summary = json.loads((report_dir / "summary.json").read_text())
    assert summary["scenario"] == "worker-crash"
    assert summary["profile"] == profile
    assert summary["seed"] == 7
    assert summary["verdict"] == verdict
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
    assert (report_dir / "history.jsonl").stat().st_size > 0
    debrief = (report_dir / "debrief.md").read_text()
    for heading in DEBRIEF_HEADINGS:
        assert heading in debrief
    # The record as charts, one offline file a CI artifact can be opened from.
    page = (report_dir / "report.html").read_text()
    assert "worker-crash" in page and "<script src=" not in page
    return summary


def test_hardened_worker_loses_nothing_when_killed_and_the_json_run_exits_0(tmp_path: Path):
    report_dir, junit = tmp_path / "hardened", tmp_path / "junit.xml"
    finished = _outage_run("hardened", report_dir, junit, "--json")
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]

    # stdout is one JSON document, and nothing else: the human table went to stderr.
    suite = json.loads(finished.stdout)["suite"]
    assert (suite["verdict"], suite["exit_code"]) == ("held", 0)
    [run] = suite["runs"]
    assert run["report_dir"] == str(report_dir)
    assert "Outage Lab" in finished.stderr

    summary = _check_report_files(report_dir, "hardened", "held")
    assert {k: v for k, v in run.items() if k != "report_dir"} == summary
    assert summary["messages"]["lost"] == 0
    assert summary["messages"]["acked"] > 100
    assert summary["timings"]["replay_s"] is not None

    [testsuite] = ET.parse(junit).getroot().findall("testsuite")
    assert testsuite.get("name") == "worker-crash[hardened]"
    assert "messages.lost" in {case.get("name") for case in testsuite.findall("testcase")}
    assert testsuite.get("failures") == "0" and testsuite.get("errors") == "0"


def test_worker_acking_before_work_is_caught_losing_messages_and_the_run_exits_1(tmp_path: Path):
    report_dir, junit = tmp_path / "vulnerable", tmp_path / "junit.xml"
    finished = _outage_run("vulnerable", report_dir, junit)
    assert finished.returncode == 1, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "failed messages.lost" in finished.stdout

    summary = _check_report_files(report_dir, "vulnerable", "deviated")
    assert summary["messages"]["lost"] > 0
    failed = {check["name"] for check in summary["checks"] if not check["passed"]}
    assert "messages.lost" in failed

    failure = ET.parse(junit).getroot().find("testsuite/testcase[@name='messages.lost']/failure")
    assert failure is not None
    assert failure.text.startswith(f"observed: {summary['messages']['lost']}")
    assert "expected: 0 acknowledged lost" in failure.text
