"""The full-size event flood: a bulk action over a view of 300,000 tickets, in a chosen profile.

Runs the helpscout-2017-event-flood scenario with `--tickets` (default 300,000) and prints the
figures the incident report asks for. Needs the stack up (`outage up`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from faults.scenarios.helpscout_2017_event_flood import EventFlood
from harness.compose_stack import ComposeStack
from harness.runner import run_scenario

FIGURES = (
    "flood_tickets",
    "bulk_action",
    "peak_queue_depth",
    "peak_queue_depth_total",
    "memory_watermark_bytes",
    "memory_alarm_at_s",
    "memory_alarm_nodes",
    "blocked_services",
    "api_message_posts_during_flood",
    "live_update_latency_during_flood_s",
    "bulk_applied",
    "drain_time_s",
    "drain_rate_eps",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=300_000)
    parser.add_argument("--profile", default="hardened", choices=("hardened", "vulnerable"))
    parser.add_argument("--report-dir", type=Path, default=Path("reports/event-flood-bench"))
    args = parser.parse_args()
    scenario = EventFlood(flood_tickets=args.tickets)
    scenario.timing.outage_s = 180
    scenario.timing.drain_timeout_s = 600
    result = run_scenario(scenario, ComposeStack(), args.profile, 1, args.report_dir)
    summary = json.loads((args.report_dir / "summary.json").read_text())
    print(f"verdict: {result.verdict}  messages: {summary['messages']}")
    for name in FIGURES:
        print(f"{name:36} {summary['metrics'].get(name)}")
    for check in summary["checks"]:
        print(f"{'ok ' if check['passed'] else 'FAIL'} {check['name']}: {check['observed']}")


if __name__ == "__main__":
    main()
