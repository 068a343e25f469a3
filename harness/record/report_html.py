"""`report.html`: a run's record as charts in one offline file, beside `debrief.md`.

It reads only the report directory (summary.json, timeline.jsonl, history.jsonl and, when the run
kept one, monitoring.jsonl), so it works for `outage run` and drills alike and for a CI artifact.
The charts are Plotly's, from the plotly package's bundled JavaScript, inlined: no network needed.
"""

from __future__ import annotations

import html
import json
import math
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any

from harness.checks.latency import summarize
from harness.observe.monitoring import MONITORING_FILE, SERIES

REPORT_FILE = "report.html"


def plotly_js() -> str:
    """The plotly.js bundle shipped inside the plotly Python package."""
    return (resources.files("plotly") / "package_data" / "plotly.min.js").read_text(encoding="utf-8")


def charts_js() -> str:
    return (resources.files("harness.record") / "charts.js").read_text(encoding="utf-8")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def points_from_history(history: list[dict[str, Any]], started_at: float) -> list[dict[str, Any]]:
    """Per-second requests, errors and latency percentiles from the recorded operations."""
    buckets: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for entry in history:
        if entry.get("type") == "op" and entry.get("invoke_wall"):
            buckets[math.floor(entry["invoke_wall"] - started_at)].append(entry)
    points = []
    for second in sorted(buckets):
        ops = buckets[second]
        latency = summarize(
            op["complete_wall"] - op["invoke_wall"]
            for op in ops
            if op.get("outcome") == "ok" and op.get("complete_wall")
        )
        point: dict[str, Any] = {
            "t": second,
            "requests_per_s": len(ops),
            "errors_per_s": sum(1 for op in ops if op.get("outcome") in ("fail", "info")),
        }
        if latency.count:
            point["latency_p50_ms"] = round((latency.p50 or 0) * 1000, 1)
            point["latency_p99_ms"] = round((latency.p99 or 0) * 1000, 1)
        points.append(point)
    return points


def write_report_html(report_dir: Path) -> Path:
    """Write `report.html` from the files of a report directory; returns its path."""
    report_dir = Path(report_dir)
    summary = json.loads((report_dir / "summary.json").read_text(encoding="utf-8"))
    timeline = _jsonl(report_dir / "timeline.jsonl")
    points = _jsonl(report_dir / MONITORING_FILE)
    if not points:
        started_at = timeline[0]["at"] - timeline[0]["t"] if timeline else 0.0
        points = points_from_history(_jsonl(report_dir / "history.jsonl"), started_at)
    alerts = [
        {"t": e["t"], "name": e.get("data", {}).get("rule", e["message"])}
        for e in timeline
        if e["kind"] == "alert"
    ]
    rows = "\n".join(
        f"<tr><td>{e['t']:.1f}</td><td>{html.escape(e['phase'])}</td><td>{html.escape(e['kind'])}</td>"
        f"<td>{html.escape(e['message'])}</td></tr>"
        for e in timeline
    )
    checks = "\n".join(
        f"<li class={'held' if c['passed'] else 'failed'}>{html.escape(c['name'])}: "
        f"{html.escape(str(c['observed']))} (expected {html.escape(str(c['expected']))})</li>"
        for c in summary.get("checks", [])
    )
    overview = (
        f"Scenario {summary.get('scenario')}, profile {summary.get('profile')}, seed {summary.get('seed')}. "
        f"Messages: {json.dumps(summary.get('messages', {}))}"
    )
    title = f"{summary.get('title', summary.get('scenario', 'run'))}: {summary.get('verdict')}"
    data = json.dumps({"points": points, "alerts": alerts, "labels": SERIES})
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
.chart {{ max-width: 1100px; }} table {{ border-collapse: collapse; font-size: 13px; }}
td {{ border-bottom: 1px solid #ddd; padding: 2px 8px; vertical-align: top; }}
li.failed {{ color: #c0392b; font-weight: bold; }} li.held {{ color: #1e7e34; }}
</style>
<script>{plotly_js()}</script>
<script>{charts_js()}</script>
</head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(overview)}</p>
<h2>What monitoring saw</h2>
<div id="charts"></div>
<h2>Checks</h2><ul>{checks}</ul>
<h2>Timeline</h2>
<table><tr><th>t (s)</th><th>phase</th><th>kind</th><th>what happened</th></tr>
{rows}
</table>
<script>
const report = {data};
const charts = new OutageCharts(document.getElementById("charts"), report.labels);
charts.add(report.points);
report.alerts.forEach((a) => charts.markAlert(a.t, a.name));
</script>
</body></html>
"""
    path = report_dir / REPORT_FILE
    path.write_text(page, encoding="utf-8")
    return path
