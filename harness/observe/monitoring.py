"""What an operator's dashboards plot, one point a second: request rate, errors, latency, queue
depth, outbox length and age, job backlog and age.

Points come from the load's own counters (what the gateway's access log would say) and the latest
probe sample (what the broker, Redis and the worker report). The drill board streams them; the
report's charts read them back from `monitoring.jsonl`.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx

from harness import control_http
from harness.checks.latency import summarize
from harness.observe.probes import ProbeSample
from harness.workloads.load import LoadStats

MONITORING_FILE = "monitoring.jsonl"

# The series every point carries, with the label and unit the charts show.
SERIES: dict[str, tuple[str, str]] = {
    "requests_per_s": ("requests", "per s"),
    "errors_per_s": ("errors and time-outs", "per s"),
    "latency_p50_ms": ("latency p50", "ms"),
    "latency_p99_ms": ("latency p99", "ms"),
    "queue_depth": ("broker queue depth", "events"),
    "outbox_length": ("outbox length", "events"),
    "outbox_age_s": ("outbox oldest event", "s"),
    "jobs_pending": ("job backlog", "jobs"),
    "oldest_job_age_s": ("oldest job", "s"),
    "live_connections": ("live websocket connections", "connections"),
}
_LIVE_CONNECTIONS = re.compile(r"^live_connections (\S+)$", re.MULTILINE)


class MonitoringSampler:
    """Turns cumulative load counters into per-second rates between successive calls."""

    def __init__(self) -> None:
        self._last_at: float | None = None
        self._last_sent = 0
        self._last_errors = 0
        self._latency_index = 0

    def point(
        self,
        t: float,
        stats: LoadStats | None,
        probe: ProbeSample | None,
        live_connections: int | None = None,
    ) -> dict[str, Any]:
        now = time.time()
        point: dict[str, Any] = {"t": round(t, 3), "at": now, "live_connections": live_connections}
        if stats is not None:
            elapsed = now - self._last_at if self._last_at is not None else None
            sent, errors = stats.sent, stats.errors()
            if elapsed:
                point["requests_per_s"] = round((sent - self._last_sent) / elapsed, 2)
                point["errors_per_s"] = round((errors - self._last_errors) / elapsed, 2)
            fresh = stats.latencies[self._latency_index :]
            self._latency_index += len(fresh)
            latency = summarize(seconds for _, seconds in fresh)
            if latency.count:
                point["latency_p50_ms"] = round((latency.p50 or 0) * 1000, 1)
                point["latency_p99_ms"] = round((latency.p99 or 0) * 1000, 1)
            self._last_at, self._last_sent, self._last_errors = now, sent, errors
        if probe is not None:
            for name in ("queue_depth", "outbox_length", "outbox_age_s", "jobs_pending", "oldest_job_age_s"):
                point[name] = getattr(probe, name)
        return point


def append_point(report_dir: Path, point: dict[str, Any]) -> None:
    with open(report_dir / MONITORING_FILE, "a", encoding="utf-8") as out:
        out.write(json.dumps(point, separators=(",", ":")) + "\n")


def live_connections(live_url: str, timeout: float = 1.0) -> int | None:
    """Open websocket sessions, as the live server's /metrics says (None: it did not answer)."""
    http_url = live_url.replace("ws://", "http://", 1).replace("wss://", "https://", 1).rstrip("/")
    try:
        reply = control_http.get(f"{http_url}/metrics", timeout=timeout)
    except httpx.HTTPError:
        return None
    found = _LIVE_CONNECTIONS.search(reply.text) if reply.status_code == 200 else None
    return int(float(found.group(1))) if found else None
