"""The full-size event flood: a bulk action over a view of 300,000 tickets, in a chosen profile.

Runs the helpscout-2017-event-flood scenario with `--tickets` (default 300,000) and prints the
figures the incident report asks for. Needs the stack up (`outage up`).

Full-size run, hardened, 2026-11-21 06:17 UTC, 2 cores shared with other stacks (load 10-28):
- bulk action: 300,000 events emitted through the outbox bulk lane in 81 s (HTTP 202)
- broker: watermark 117 MiB (memory at rest + 20 MiB); no memory alarm, no blocked connection;
  peak depth events.bulk 5,751 (bounded at 20,000), events.worker 96
- bulk drain: 300,000 of 300,000 tickets updated (lost 0) in 497 s at 603 events/s
- messages: 9,888 acknowledged, lost 0, duplicated 0; live-update p99 3.5 s
- message posts during the flood: p50 0.41 s, p99 2.0 s, 145 of 1,839 failed or timed out.
  In the 20 s before the flood the same posts had p50 0.05 s, p99 1.6 s: the shared machine
  already broke the 0.5 s objective, and the 81 s of bulk encoding and the drain raised p50 to
  0.3-0.7 s. Verdict `deviated`, on the two normal-traffic checks only.
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
