"""report.html: a report directory's record as charts in one file that needs no network."""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness.record.report_html import points_from_history, write_report_html


def op(invoke: float, complete: float, outcome: str) -> dict:
    return {
        "type": "op",
        "kind": "post_message",
        "outcome": outcome,
        "invoke_wall": invoke,
        "complete_wall": complete,
    }


def a_report(folder: Path, monitoring: list[dict] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    summary = {
        "scenario": "worker-crash",
        "title": "The worker dies",
        "profile": "hardened",
        "seed": 1,
        "verdict": "held",
        "messages": {"lost": 0},
        "checks": [{"name": "messages.lost", "passed": True, "observed": 0, "expected": 0}],
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    timeline = [
        {"t": 0.0, "at": 1000.0, "phase": "setup", "kind": "phase", "message": "setup begins", "data": {}},
        {"t": 2.5, "at": 1002.5, "phase": "outage", "kind": "alert", "message": "alert api_down fired: <b>",
         "data": {"rule": "api_down"}},
    ]  # fmt: skip
    (folder / "timeline.jsonl").write_text("".join(json.dumps(e) + "\n" for e in timeline))
    history = [
        op(1000.1, 1000.2, "ok"),
        op(1000.5, 1000.9, "ok"),
        op(1001.2, 1003.2, "info"),
        op(1001.3, 1001.4, "ok"),
    ]
    (folder / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in history))
    if monitoring is not None:
        (folder / "monitoring.jsonl").write_text("".join(json.dumps(p) + "\n" for p in monitoring))
    return folder


def embedded_report(page: str) -> dict:
    return json.loads(re.search(r"const report = (\{.*?\});\n", page).group(1))


def test_a_run_without_monitoring_points_is_charted_from_its_history(tmp_path):
    page = write_report_html(a_report(tmp_path)).read_text()
    report = embedded_report(page)
    assert report["points"] == [
        {"t": 0, "requests_per_s": 2, "errors_per_s": 0, "latency_p50_ms": 100.0, "latency_p99_ms": 400.0},
        {"t": 1, "requests_per_s": 2, "errors_per_s": 1, "latency_p50_ms": 100.0, "latency_p99_ms": 100.0},
    ]
    assert report["alerts"] == [{"t": 2.5, "name": "api_down"}]


def test_the_page_carries_plotly_itself_and_loads_nothing_from_the_network(tmp_path):
    page = write_report_html(a_report(tmp_path)).read_text()
    assert len(page) > 1_000_000, "plotly.js is inlined"
    assert "class OutageCharts" in page
    assert not re.search(r"<script[^>]+src=", page) and "<link" not in page


def test_timeline_text_is_escaped(tmp_path):
    page = write_report_html(a_report(tmp_path)).read_text()
    assert "alert api_down fired: &lt;b&gt;" in page


def test_a_drill_report_uses_the_points_monitoring_saw(tmp_path):
    points = [{"t": 1.0, "queue_depth": 5, "outbox_length": 0}, {"t": 2.0, "queue_depth": 9}]
    report = embedded_report(write_report_html(a_report(tmp_path, points)).read_text())
    assert report["points"] == points


def test_history_points_are_bucketed_by_second_from_the_start():
    points = points_from_history([op(10.2, 10.3, "fail"), op(12.9, 13.0, "ok")], started_at=10.0)
    assert [p["t"] for p in points] == [0, 2]
    assert points[0]["errors_per_s"] == 1 and "latency_p50_ms" not in points[0]
