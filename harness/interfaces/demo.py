"""`make demo`: run the main scenario in both profiles and print the verdicts side by side."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from harness.engine.runner import run_scenario
from harness.engine.scenario import scenario_class
from harness.interfaces.console import progress_printer, results_table
from harness.record.report import RunResult
from harness.stack.compose_stack import ComposeStack

DEMO_SCENARIO = "gorgias-2021-queue-cluster-down"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default=DEMO_SCENARIO)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report-dir", default="reports/demo")
    args = parser.parse_args()

    stack = ComposeStack()
    results = []
    for profile in ("hardened", "vulnerable"):
        scenario = scenario_class(args.scenario)()
        with progress_printer() as progress:
            results.append(
                run_scenario(
                    scenario, stack, profile, args.seed, Path(args.report_dir) / profile, progress=progress
                )
            )
    console = Console(width=120)
    console.print(results_table(results))
    for result in results:
        for check in result.failed_checks:
            console.print(f"{result.profile}: [red]failed[/red] {check.name}: {check.observed}")
    console.print(f"debriefs: {args.report_dir}/<profile>/debrief.md")
    return 0 if demo_succeeded(scenario_class(args.scenario).vulnerable_symptoms, *results) else 1


def demo_succeeded(symptoms: tuple[str, ...], hardened: RunResult, vulnerable: RunResult) -> bool:
    """Hardened holds, and vulnerable is caught by the incident's own symptom: every check the
    scenario names in `vulnerable_symptoms` failed, not merely some check."""
    failed = {c.name for c in vulnerable.checks if c.status == "failed"}
    return hardened.verdict == "held" and vulnerable.verdict == "deviated" and set(symptoms) <= failed


if __name__ == "__main__":
    sys.exit(main())
