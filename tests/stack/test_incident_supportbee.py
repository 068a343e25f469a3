"""SupportBee, July 2016: a Redis instrumentation release breaks the background jobs, the web app
stays up and the uptime probe stays green.

Both profiles face the same release and run the same runbook. Hardened (reliable job streams, job
monitors): an alert within 60 s, every email imported and delivered exactly once. Vulnerable (list
queue, uptime probe only): no alert at all while the backlog grows, and with the fetch-breaking
wrapper (beyond the postmortem), emails taken and lost.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.engine.scenario import scenario_class
from harness.record.record import Record

pytestmark = [pytest.mark.stack, pytest.mark.chaos]

EVERY_CALL_RAISES = "supportbee-2016-broken-background-jobs"
FETCH_BREAKS = "supportbee-2016-broken-background-jobs-fetch"
JOB_ALERTS = {"job_age", "job_completion_stalled", "job_runner_heartbeat", "canary_job_stale"}


def _failed(result) -> set[str]:
    return {c.name for c in result.failed_checks}


def _figures(scenario_id: str, report_dir) -> tuple[object, Record]:
    return scenario_class(scenario_id)(), Record.load(report_dir)


@pytest.mark.incident(EVERY_CALL_RAISES)
def test_hardened_job_monitors_catch_the_broken_release_and_no_email_is_lost(outage_run):
    result = outage_run(profile="hardened")
    assert result.verdict == "held", [c.as_dict() for c in result.failed_checks]
    assert result.timings["time_to_detect_s"] <= 60
    assert set(result.metrics["alerts_fired"]) & JOB_ALERTS
    scenario, record = _figures(EVERY_CALL_RAISES, result.report_dir)
    # A single slow probe on a busy machine is no outage; the web app stayed up nearly throughout.
    assert scenario.uptime_green_pct(record) >= 90.0
    assert scenario.backlog_at_rollback(record) > 2 * scenario.backlog_steady_peak(record)


@pytest.mark.incident(EVERY_CALL_RAISES)
def test_uptime_only_monitoring_stays_green_while_the_backlog_grows(outage_run):
    result = outage_run(profile="vulnerable")
    assert result.verdict == "deviated"
    assert set(scenario_class(EVERY_CALL_RAISES).vulnerable_symptoms) <= _failed(result)
    assert result.timings["time_to_detect_s"] is None
    scenario, record = _figures(EVERY_CALL_RAISES, result.report_dir)
    assert scenario.uptime_green_pct(record) >= 90.0
    assert scenario.backlog_at_rollback(record) > 2 * scenario.backlog_steady_peak(record)
    # The job monitors this profile lacks would have fired: the outage was detectable.
    assert scenario.job_monitors_would_fire(record) != "none"


@pytest.mark.incident(FETCH_BREAKS)
@pytest.mark.parametrize("profile", ["hardened", "vulnerable"])
def test_a_wrapper_that_breaks_after_the_fetch_loses_taken_jobs_only_from_a_naive_queue(profile, outage_run):
    result = outage_run(profile=profile)
    report_dir = Path(result.details["report_dir"])
    summary = json.loads((report_dir / "summary.json").read_text())
    failed = {c["name"] for c in summary["checks"] if not c["passed"]}
    scenario, record = _figures(FETCH_BREAKS, report_dir)
    if profile == "hardened":
        assert summary["verdict"] == "held", failed
        assert summary["timings"]["time_to_detect_s"] <= 60
        assert scenario.emails_imported_lost(record) == scenario.emails_delivered_lost(record) == 0
        assert scenario.emails_delivered_duplicated(record) == 0
    else:
        assert summary["verdict"] == "deviated"
        assert summary["timings"]["time_to_detect_s"] is None
        # BRPOP took the job, the broken wrapper raised: the email is gone for good.
        assert set(scenario.vulnerable_symptoms) <= failed
        assert scenario.emails_delivered_lost(record) > 0
    assert "## Timeline" in (report_dir / "debrief.md").read_text()
