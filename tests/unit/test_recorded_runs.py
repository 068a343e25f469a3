"""Every recorded run under tests/records is re-judged offline, without Docker, to the verdict the
live run gave; each declared check is judged on it, and the vulnerable record fails the incident's
named symptoms. (Each scenario's own tests/unit file shows its checks failing on edited records.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.checks.recheck import recheck
from harness.engine.scenario import scenario_class

RECORDS = Path(__file__).resolve().parents[1] / "records"
RECORD_DIRS = sorted(p.parent for p in RECORDS.glob("*/*/meta.json"))


def _live_summary(record_dir: Path) -> dict:
    return json.loads((record_dir / "summary.json").read_text())


@pytest.mark.parametrize("record_dir", RECORD_DIRS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_recorded_run_is_rejudged_offline_to_the_live_verdict_and_checks(record_dir):
    live = _live_summary(record_dir)

    again = recheck(record_dir)

    assert again.result.verdict == live["verdict"]
    assert {c.name: c.status for c in again.result.checks} == {
        c["name"]: c.get("status", "passed" if c["passed"] else "failed") for c in live["checks"]
    }
    assert again.result.messages == live["messages"]


@pytest.mark.parametrize("record_dir", RECORD_DIRS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_declared_check_is_judged_on_a_finished_record_never_left_unknown(record_dir):
    scenario = scenario_class(json.loads((record_dir / "meta.json").read_text())["scenario"])

    checks = {c.name: c for c in recheck(record_dir).result.checks}

    for expect in scenario.expectations:
        assert expect.name in checks, f"{expect.name} was not judged"
        assert not checks[expect.name].unknown, checks[expect.name].observed


@pytest.mark.parametrize("scenario_id", sorted({p.parent.name for p in RECORD_DIRS}))
def test_the_vulnerable_record_shows_the_incidents_named_symptoms(scenario_id):
    scenario = scenario_class(scenario_id)
    vulnerable = RECORDS / scenario_id / "vulnerable"
    if not (vulnerable / "meta.json").exists():
        pytest.fail(f"{scenario_id}: no vulnerable record kept")
    failed = {c.name for c in recheck(vulnerable).result.checks if c.status == "failed"}
    assert scenario.vulnerable_symptoms, f"{scenario_id} names no vulnerable symptom"
    assert set(scenario.vulnerable_symptoms) <= failed
    hardened = RECORDS / scenario_id / "hardened"
    if (hardened / "meta.json").exists():  # a clean hardened run shows none of them
        still = {c.name for c in recheck(hardened).result.checks if c.status == "failed"}
        assert not set(scenario.vulnerable_symptoms) & still
