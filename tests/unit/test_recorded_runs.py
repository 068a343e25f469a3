"""Every recorded run under tests/records is re-judged offline, without Docker, to the verdict the
live run gave; and every check a scenario declares is seen both passing and failing on records."""

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


@pytest.mark.parametrize("scenario_id", sorted({p.parent.name for p in RECORD_DIRS}))
def test_every_declared_check_is_seen_passing_on_one_record_and_failing_on_another(scenario_id):
    scenario = scenario_class(scenario_id)
    seen: dict[str, set[str]] = {}
    for record_dir in (p for p in RECORD_DIRS if p.parent.name == scenario_id):
        for check in recheck(record_dir).result.checks:
            seen.setdefault(check.name, set()).add(check.status)
    for expect in scenario.expectations:
        assert seen.get(expect.name, set()) >= {"passed", "failed"}, (
            f"{expect.name} of {scenario_id} seen only {sorted(seen.get(expect.name, []))}: "
            "keep a record where it fails (an edited one if no run makes it fail)"
        )


@pytest.mark.parametrize("scenario_id", sorted({p.parent.name for p in RECORD_DIRS}))
def test_the_vulnerable_record_shows_the_incidents_named_symptoms(scenario_id):
    scenario = scenario_class(scenario_id)
    vulnerable = RECORDS / scenario_id / "vulnerable"
    if not (vulnerable / "meta.json").exists():
        pytest.fail(f"{scenario_id}: no vulnerable record kept")
    failed = {c.name for c in recheck(vulnerable).result.checks if c.status == "failed"}
    assert set(scenario.vulnerable_symptoms) <= failed
    assert scenario.vulnerable_symptoms, f"{scenario_id} names no vulnerable symptom"
