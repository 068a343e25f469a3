"""A suite of scenario runs, as CI sees it: where each run's report goes, one verdict, one document.

`outage run ID... | --all` runs every (scenario, profile) pair in order; the suite's exit code is the
worst of its runs: 0 all held, 1 any deviated, 2 any harness error.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.record.report import EXIT_CODES, RunResult

DEFAULT_REPORTS = Path("reports")


@dataclass(frozen=True)
class PlannedRun:
    scenario: str
    profile: str
    report_dir: Path


def plan_runs(
    scenarios: list[str], profiles: list[str], report_dir: str | None, seed: int
) -> list[PlannedRun]:
    """Every (scenario, profile) pair, scenario by scenario, each with its own report directory.

    A single run keeps the historical layout: `--report-dir DIR` is the run's own directory
    (default `reports/<scenario>-<profile>`). Several runs each get `<DIR>/<scenario>/<profile>/`
    (default DIR `reports`), so no run overwrites another's files.
    """
    pairs = [(scenario, profile) for scenario in scenarios for profile in profiles]
    if len(pairs) == 1:
        scenario, profile = pairs[0]
        single = Path(report_dir) if report_dir else DEFAULT_REPORTS / f"{scenario}-{profile}"
        return [PlannedRun(scenario, profile, single)]
    base = Path(report_dir) if report_dir else DEFAULT_REPORTS
    return [PlannedRun(scenario, profile, base / scenario / profile) for scenario, profile in pairs]


def suite_verdict(results: list[RunResult]) -> str:
    """`error` if any run's harness failed, else `deviated` if any run deviated, else `unknown` if
    any run could not be judged, else `held`."""
    verdicts = {result.verdict for result in results}
    for worst in ("error", "deviated", "unknown"):
        if worst in verdicts:
            return worst
    return "held"


def suite_exit_code(results: list[RunResult]) -> int:
    return EXIT_CODES[suite_verdict(results)]


def outage_version() -> str:
    try:
        return metadata.version("outage-lab")
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


def suite_document(results: list[RunResult], report_dirs: list[Path]) -> dict[str, Any]:
    """The `--json` document: the suite's verdict and, per run, the fields of its summary.json."""
    runs = [
        result.summary() | {"report_dir": str(report_dir)}
        for result, report_dir in zip(results, report_dirs, strict=True)
    ]
    counts = {verdict: sum(r.verdict == verdict for r in results) for verdict in EXIT_CODES}
    return {
        "suite": {
            "outage_version": outage_version(),
            "verdict": suite_verdict(results),
            "exit_code": suite_exit_code(results),
            "counts": counts,
            "runs": runs,
        }
    }
