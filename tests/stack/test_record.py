"""A run's record reaches disk as the run goes: a harness killed with SIGKILL in the middle of its
outage leaves its timeline and history up to the kill, `outage check` judges that partial record
without a traceback, and `outage heal` repairs the stack it left."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.engine.waiting import wait_until_sync

pytestmark = [pytest.mark.stack, pytest.mark.chaos]
OUTAGE = str(Path(sys.executable).parent / "outage")


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):  # the last line of a killed writer may be torn
            rows.append(json.loads(line))
    return rows


def _kinds(path: Path) -> list[str]:
    return [row.get("kind") for row in _lines(path)]


def test_a_run_killed_during_its_outage_leaves_a_partial_record_that_check_judges(outage_stack, tmp_path):
    report = tmp_path / "killed"
    harness = subprocess.Popen(
        [OUTAGE, "run", "worker-crash", "--report-dir", str(report)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_sync(
            lambda: "fault" in _kinds(report / "timeline.jsonl"), timeout=300, what="the fault's event"
        )
        # The history streams every half second: let one flush pass after the injection.
        wait_until_sync(lambda: len(_lines(report / "history.jsonl")) > 0, timeout=10, what="history on disk")
    finally:
        os.killpg(harness.pid, signal.SIGKILL)
        harness.wait()

    assert "fault" in _kinds(report / "timeline.jsonl")
    assert any(row["type"] == "invoke" for row in _lines(report / "history.jsonl"))
    assert not (report / "summary.json").exists()

    check = subprocess.run([OUTAGE, "check", str(report)], capture_output=True, text=True, timeout=120)

    assert check.returncode in (0, 1), check.stderr
    assert "partial record" in check.stderr
    assert "Traceback" not in check.stdout + check.stderr

    heal = subprocess.run([OUTAGE, "heal"], capture_output=True, text=True, timeout=400)

    assert heal.returncode == 0, heal.stdout + heal.stderr
    assert outage_stack.control.wait_healthy(timeout=120).healthy
