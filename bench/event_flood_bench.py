"""The full-size event flood: a bulk action over a view of 300,000 tickets, in a chosen profile.

Runs the helpscout-2017-event-flood scenario with `--tickets` (default 300,000) and prints the
figures the incident report asks for. Needs the stack up (`outage up`).

Full-size runs, 2026-11-21 ~08:40-09:00 UTC, quiet 2-core machine, one stack:
- hardened (held): 300,000 events through the bulk lane, the bulk action answered 202 after
  93.8 s (it waits whenever its lane holds 5,000 events); broker watermark 112 MiB (memory at rest
  + 20 MiB, since replaced by the container limit's relative watermark), peak 98 MiB, no memory
  alarm, no blocked connection; peak depth events.bulk.batches
  19 (of 200), events.worker 6; 300,000 of 300,000 tickets updated in 95.2 s at 3,156 events/s;
  messages 2,439 acknowledged, lost 0, dup 0; message posts during the flood p50 0.038 s,
  p99 0.374 s, 0 errors of 1,976; live-update p50 0.18 s, p99 0.68 s. 2 min 25 s wall.
- vulnerable (deviated): memory alarm 28.6 s after the flood began (rabbit2, rabbit3), api, relay
  and worker blocked; peak events.worker 43,746; live-update p50 26 s, p99 64 s; 1,112 acknowledged
  messages lost (answered 202 onto a blocked connection the firewall then cut) and 158,035 of
  300,000 tickets updated; posts themselves p99 0.31 s. 13 min 13 s wall.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from run_exit import bench_exit_code

from faults.scenarios.helpscout_2017_event_flood import EventFlood
from harness.engine.runner import run_scenario
from harness.stack.compose_stack import ComposeStack

FIGURES = (
    "broker_memory_at_rest_mib",
    "memory_watermark_mib",
    "broker_peak_memory_mib",
    "peak_to_watermark_margin_mib",
    "peak_events_queued",
    "memory_alarm_after_flood_s",
    "bulk_request_s",
    "message_post_errors_during_flood",
    "message_post_p99_during_flood_s",
    "live_update_p99_during_flood_s",
    "bulk_tickets_not_updated",
    "bulk_drain_s",
    "runbook_applied",
)


def main() -> int:
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
    return bench_exit_code([result])


if __name__ == "__main__":
    sys.exit(main())
