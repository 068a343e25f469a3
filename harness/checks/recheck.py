"""Re-judging a recorded run from its report directory alone: what `outage check` does.

No Docker and no stack: the scenario is found by the id in meta.json, and its checks are pure
functions of the record, so the verdict is the one the live run gave (unless the record changed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from harness.checks.judge import judge
from harness.engine.scenario import ScenarioError, scenario_class
from harness.record.record import SUMMARY, Record, RecordError
from harness.record.report import RunResult


class RecheckError(RuntimeError):
    """The directory is not a usable record (exit 2)."""


@dataclass
class Recheck:
    result: RunResult
    partial: bool
    problems: list[str] = field(default_factory=list)
    live_verdict: str | None = None  # what summary.json said, if the run finished


def recheck(report_dir: str | Path) -> Recheck:
    folder = Path(report_dir)
    try:
        record = Record.load(folder)
    except RecordError as exc:
        raise RecheckError(str(exc)) from None
    try:
        scenario_type = scenario_class(record.scenario)
    except ScenarioError as exc:
        raise RecheckError(f"{folder}: {exc}") from None
    scenario = scenario_type()
    recorded = record.meta.get("timing")
    for name, value in (recorded if isinstance(recorded, dict) else {}).items():
        if hasattr(scenario.timing, name):  # a scenario's own Timing subclass has more fields
            setattr(scenario.timing, name, value)
    judgement = judge(scenario, record)
    live_verdict, wall_s = None, 0.0
    if (folder / SUMMARY).exists():
        summary = json.loads((folder / SUMMARY).read_text())
        live_verdict, wall_s = summary.get("verdict"), float(summary.get("wall_s") or 0.0)
    result = RunResult.from_judgement(record.meta, judgement, wall_s, None, folder)
    return Recheck(result, record.partial, record.problems, live_verdict)
