"""The report of a run: summary.json (the contract CI reads) and debrief.md, beside its record.

The debrief follows a postmortem's layout, so a drill ends with the document a team would write.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.checks.check import Check

if TYPE_CHECKING:
    from harness.checks.judge import Judgement
    from harness.engine.runner import Run

EXIT_CODES = {"held": 0, "deviated": 1, "unknown": 2, "error": 2}


@dataclass
class RunResult:
    scenario: str
    title: str
    profile: str
    seed: int
    verdict: str  # held | deviated | error
    messages: dict[str, int]
    checks: list[Check]
    timings: dict[str, float | None]
    metrics: dict[str, Any]
    wall_s: float
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    report_dir: Path | None = None  # where the run's record and report are

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def summary(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "title": self.title,
            "profile": self.profile,
            "seed": self.seed,
            "verdict": self.verdict,
            "error": self.error,
            "messages": self.messages,
            "checks": [c.as_dict() for c in self.checks],
            "timings": self.timings,
            "metrics": self.metrics,
            "wall_s": round(self.wall_s, 1),
            "details": self.details,
        }

    @classmethod
    def from_judgement(
        cls,
        meta: dict[str, Any],
        judgement: Judgement,
        wall_s: float,
        error: str | None,
        report_dir: Path | None,
    ) -> RunResult:
        """The result of a judged record (`meta` as in meta.json)."""
        return cls(
            scenario=str(meta["scenario"]),
            title=str(meta.get("title", "")),
            profile=str(meta["profile"]),
            seed=int(meta["seed"]),
            verdict=judgement.verdict,
            messages=judgement.messages.as_summary(),
            checks=judgement.checks,
            timings=judgement.timings,
            metrics=judgement.metrics,
            wall_s=wall_s,
            error=error,
            details=judgement.messages.details(),
            report_dir=report_dir,
        )


def write_report(result: RunResult, run: Run, report_dir: Path) -> None:
    """The verdict beside the record the run streamed: summary.json, then debrief.md."""
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "summary.json").write_text(json.dumps(result.summary(), indent=2, default=str) + "\n")
    debrief = render_debrief(result, run)
    (report_dir / "debrief.md").write_text(debrief)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(debrief + "\n")


def render_debrief(result: RunResult, run: Run) -> str:
    scenario = run.scenario
    m = result.messages
    held = [c for c in result.checks if c.passed]
    failed = result.failed_checks
    lines = [
        f"# Debrief: {scenario.title}",
        "",
        f"Scenario `{result.scenario}`, profile `{result.profile}`, seed {result.seed}: "
        f"**{result.verdict}** (run took {result.wall_s:.0f} s).",
        "",
        "## Overview",
        "",
        scenario.drill.briefing,
        "",
        f"Source: {scenario.source}",
        "",
        "## Timeline",
        "",
        "| t (s) | phase | what happened |",
        "| ---: | --- | --- |",
    ]
    for event in run.timeline.events():
        lines.append(f"| {event.t:.1f} | {event.phase} | {event.kind}: {event.message} |")
    lines += [
        "",
        "## Impact",
        "",
        f"- messages attempted {m.get('attempted', 0)}, acknowledged {m.get('acked', 0)}, "
        f"failed {m.get('failed', 0)}, unknown {m.get('unknown', 0)}",
        f"- delivered {m.get('delivered', 0)}, **lost {m.get('lost', 0)}**, "
        f"duplicated {m.get('duplicated', 0)}, unexpected {m.get('unexpected', 0)}, "
        f"recovered {m.get('recovered', 0)}",
    ]
    for name, value in result.timings.items():
        lines.append(f"- {name}: {'never' if value is None else f'{value:.1f} s'}")
    for name, value in result.metrics.items():
        lines.append(f"- {name}: {value}")
    lines += ["", "## What held", ""]
    lines += [f"- {c.name}: {c.observed} (expected {c.expected})" for c in held] or ["- nothing"]
    lines += ["", "## What failed", ""]
    lines += [f"- **{c.name}**: {c.observed} (expected {c.expected})" for c in failed] or ["- nothing"]
    if result.error:
        lines += [f"- **the harness itself**: {result.error}"]
    lines += ["", "## Action items", ""]
    if failed:
        lines += [
            f"- Fix what let `{c.name}` fail; rerun with seed {result.seed} to reproduce." for c in failed
        ]
    lines += [f"- Runbook step to rehearse: {step}" for step in scenario.drill.runbook]
    return "\n".join(lines) + "\n"
