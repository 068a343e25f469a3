"""The SupportBee 2016 checks fail on what they guard against: a backlog that never settles after
the rollback, an email never delivered, an email delivered twice, a run without its alerts.

Each test edits a kept record (tests/records) in a temporary copy and re-judges it from its files,
exactly as `outage check` would. The kept vulnerable run passes every email and backlog check (its
only failure is the missed detection), the kept hardened run detected the release in seconds.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faults.scenarios.supportbee_2016_broken_background_jobs import ROLLED_BACK, BrokenBackgroundJobs
from harness.record.record import Record

RECORDS = Path(__file__).resolve().parents[1] / "records" / BrokenBackgroundJobs.id
HARDENED = RECORDS / "hardened-starved"
VULNERABLE = RECORDS / "vulnerable"
EDITED_FILES = ("meta.json", "timeline.jsonl", "history.jsonl", "samples.jsonl")
Rows = list[dict[str, Any]]


def edited_copy(source: Path, target: Path, edit: Callable[[str, Rows], Rows]) -> Path:
    """Copy a kept record to `target` with `edit(file, rows)` applied to the rows of each file."""
    target.mkdir(parents=True, exist_ok=True)
    for name in EDITED_FILES:
        plain, packed = source / name, source / f"{name}.gz"
        text = plain.read_text() if plain.exists() else gzip.decompress(packed.read_bytes()).decode()
        if name == "meta.json":
            rows = edit(name, [json.loads(text)])
            (target / name).write_text(json.dumps(rows[0], indent=2) + "\n")
            continue
        rows = edit(name, [json.loads(line) for line in text.splitlines() if line.strip()])
        (target / name).write_text("".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows))
    return target


def _statuses(report_dir: Path) -> dict[str, str]:
    scenario = BrokenBackgroundJobs()
    return {check.name: check.status for check in scenario.checks(Record.load(report_dir))}


def _rollback_t(rows: Rows) -> float:
    return next(row["t"] for row in rows if row.get("data", {}).get("mark") == ROLLED_BACK)


def backlog_never_settles(file: str, rows: Rows) -> Rows:
    """Every probe after the rollback sees a thousand jobs waiting, the oldest a minute old."""
    if file == "meta.json":
        rows[0]["edited"] = "every probe sample after the rollback shows 1000 jobs waiting"
    if file != "samples.jsonl":
        return rows
    rolled_back = _rollback_t(read_rows(VULNERABLE / "timeline.jsonl"))
    for row in rows:
        if row["stream"] == "probe" and row["t"] >= rolled_back:
            row["jobs_pending"], row["oldest_job_age_s"] = 1000, 60.0
    return rows


def read_rows(path: Path) -> Rows:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _first_delivery(rows: Rows) -> dict[str, Any]:
    return next(r for r in rows if r.get("type") == "observation" and r["kind"] == "email_delivered")


def test_the_kept_vulnerable_record_passes_every_email_and_backlog_check():
    statuses = _statuses(VULNERABLE)
    assert statuses["backlog.cleared"] == "passed"
    assert statuses["emails_delivered.lost"] == statuses["emails_delivered.duplicated"] == "passed"


def test_a_backlog_that_never_settles_after_the_rollback_fails_backlog_cleared(tmp_path):
    edited = edited_copy(VULNERABLE, tmp_path / "edited", backlog_never_settles)

    assert _statuses(edited)["backlog.cleared"] == "failed"
    figure = BrokenBackgroundJobs().backlog_clear_s(Record.load(edited))
    assert figure.value is None and "1000 jobs still waiting" in figure.detail


def test_an_email_never_delivered_fails_emails_delivered_lost(tmp_path):
    dropped: list[str] = []

    def drop_one_delivery(file: str, rows: Rows) -> Rows:
        if file != "history.jsonl":
            return rows
        gone = _first_delivery(rows)
        dropped.append(gone["key"])
        return [r for r in rows if r is not gone]

    edited = edited_copy(VULNERABLE, tmp_path / "edited", drop_one_delivery)

    assert _statuses(edited)["emails_delivered.lost"] == "failed"
    assert BrokenBackgroundJobs().emails_delivered_lost(Record.load(edited)) == 1


def test_an_email_delivered_twice_fails_emails_delivered_duplicated(tmp_path):
    def deliver_one_twice(file: str, rows: Rows) -> Rows:
        return [*rows, dict(_first_delivery(rows))] if file == "history.jsonl" else rows

    edited = edited_copy(VULNERABLE, tmp_path / "edited", deliver_one_twice)

    assert _statuses(edited)["emails_delivered.duplicated"] == "failed"


def test_a_run_whose_alerts_are_taken_out_of_the_record_is_not_detected(tmp_path):
    def no_alerts(file: str, rows: Rows) -> Rows:
        return [r for r in rows if r.get("kind") != "alert"] if file == "timeline.jsonl" else rows

    edited = edited_copy(HARDENED, tmp_path / "edited", no_alerts)

    assert _statuses(HARDENED)["detection.within_60s"] == "passed"
    assert _statuses(edited)["detection.within_60s"] == "failed"
