"""The gateway throttling incident at a bigger size: more agents, bigger large accounts, longer phases.

Runs proto-2023-gateway-throttling for each profile asked for and prints what the postmortem asks
about: ordinary agents' latency by phase, the request rate before and after the fix's restart, the
chatbot's longest silence, how the large accounts fared, what was shed and why, and Redis under it.
Asserts nothing. Needs the stack up (`outage up`, with OUTAGE_PROJECT set).

    .venv/bin/python bench/gateway_throttling_bench.py --ordinary 40 --large 4 --conversations 20000
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from run_exit import bench_exit_code

from faults.scenarios.proto_2023_gateway_throttling import GatewayThrottling, Population
from harness.checks.expect import figure_methods
from harness.engine.runner import run_scenario
from harness.record.report import RunResult
from harness.stack.compose_stack import ComposeStack

SCENARIO = GatewayThrottling.id


def _print_result(profile: str, result: RunResult) -> None:
    print(f"\n== {SCENARIO} ({profile}): {result.verdict} in {result.wall_s:.0f} s")
    if result.error:
        print(f"harness error: {result.error}")
    for check in result.checks:
        mark = "ok  " if check.passed else "FAIL"
        print(f"  {mark} {check.name}: {check.observed} (want {check.expected})")
    for name in figure_methods(GatewayThrottling):  # every figure the record gives, as the report shows it
        print(f"  {name}: {result.metrics.get(name, '-')}")
    print("messages:", json.dumps(result.messages))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("hardened", "vulnerable", "both"), default="both")
    parser.add_argument("--ordinary", type=int, default=30, help="ordinary agents (test size: 10)")
    parser.add_argument("--large", type=int, default=3, help="large accounts (test size: 3)")
    parser.add_argument("--conversations", type=int, default=20_000, help="per large account (test: 10,000)")
    parser.add_argument("--bot-rate", type=float, default=4.0, help="bot messages per second (test: 2)")
    parser.add_argument("--scale", type=float, default=2.0, help="multiplies every phase's length")
    parser.add_argument("--report-dir", type=Path, default=Path("reports/gateway-throttling-bench"))
    args = parser.parse_args()

    stack = ComposeStack()
    profiles = ("hardened", "vulnerable") if args.profile == "both" else (args.profile,)
    results = []
    for profile in profiles:
        scenario = GatewayThrottling()
        scenario.population = Population(args.ordinary, args.large, args.conversations, args.bot_rate)
        timing = scenario.timing
        timing.steady_s *= args.scale
        timing.outage_s *= args.scale
        timing.after_recovery_s *= args.scale
        result = run_scenario(scenario, stack, profile, 1, args.report_dir / profile)
        _print_result(profile, result)
        results.append(result)
    return bench_exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
