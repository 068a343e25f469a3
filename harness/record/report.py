"""The report of a run: summary.json (the contract CI reads) and debrief.md, beside its record.

The debrief follows a postmortem's layout, so a drill ends with the document a team would write.
"""

from __future__ import annotations

import ast
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.checks.check import Check
from harness.record.report_html import write_report_html

if TYPE_CHECKING:
    from harness.checks.judge import Judgement
    from harness.engine.runner import Run

EXIT_CODES = {"held": 0, "deviated": 1, "unknown": 2, "error": 2}

log = logging.getLogger(__name__)


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
    """The verdict beside the record the run streamed: summary.json, debrief.md, then report.html
    (the record as charts, drawn from these files alone; a failure to draw loses nothing else)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "summary.json").write_text(json.dumps(result.summary(), indent=2, default=str) + "\n")
    debrief = render_debrief(result, run)
    (report_dir / "debrief.md").write_text(debrief)
    try:
        write_report_html(report_dir)
    except Exception:  # the charts are a view of the record; the record and verdict are written
        log.exception("report.html could not be drawn for %s", report_dir)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(debrief + "\n")


# Units read from a figure's name, longest suffix first: `replay_s` is seconds, `rate_per_s` a rate.
_UNITS = (
    ("_per_s", "/s"),
    ("_ms", "ms"),
    ("_s", "s"),
    ("_pct", "%"),
    ("_mb", "MiB"),
    ("_mib", "MiB"),
    ("_kib", "KiB"),
    ("_bytes", "bytes"),
)
_MESSAGE_FIGURES = (
    ("attempted", "posted by the load"),
    ("acked", "acknowledged by the api"),
    ("failed", "refused (a definite failure)"),
    ("unknown", "outcome unknown (time-out)"),
    ("delivered", "observed processed"),
    ("lost", "acknowledged, never observed"),
    ("duplicated", "applied twice"),
    ("unexpected", "observed, never attempted"),
    ("recovered", "outcome unknown, yet observed"),
)


def cell(value: object) -> str:
    """Text safe inside a markdown table cell: pipes escaped, line breaks as <br>."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", "<br>").replace("\n", "<br>")


def _row(*cells: object) -> str:
    return "| " + " | ".join(cell(c) for c in cells) + " |"


def _table(header: tuple[str, ...], rows: list[tuple[object, ...]], align: str) -> list[str]:
    """A markdown table; `align` has one letter per column: l (text) or r (figures)."""
    rule = "| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |"
    return [_row(*header), rule, *(_row(*r) for r in rows), ""]


def _number(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "never" if value is None else str(value)


def _unit(name: str) -> str:
    return next((unit for suffix, unit in _UNITS if name.endswith(suffix)), "")


def _words(name: str) -> str:
    """`time_to_recover_s` -> `time to recover`: a figure's name without its unit suffix."""
    for suffix, _ in _UNITS:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("_", " ").strip()


def _plain(value: object) -> str:
    """A value as a person writes it: `a 1, b on`, never a Python repr."""
    if isinstance(value, dict):
        return ", ".join(f"{key} {_plain(inner)}" for key, inner in value.items()) or "none"
    if isinstance(value, list | tuple | set):
        return ", ".join(_plain(inner) for inner in value) or "none"
    return _number(value)


def _readable(message: str) -> str:
    """A timeline message whose tail is a Python literal (`profile hardened: {'OUTBOX': 'on'}`),
    with that literal written out plainly."""
    for opening in ("{", "["):
        at = message.find(opening)
        if at < 0:
            continue
        try:
            literal = ast.literal_eval(message[at:])
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
        if isinstance(literal, dict | list):
            return message[:at] + _plain(literal)
    return message


def _flatten(prefix: str, value: object, figures: list[tuple[str, object]], tables: dict[str, list]) -> None:
    """Nested metrics as (dotted name, scalar) figures; lists of records become tables of their own."""
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, figures, tables)
    elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        tables[prefix] = value
    elif isinstance(value, list | tuple):
        figures.append((prefix, _plain(list(value))))
    else:
        figures.append((prefix, value))


def _figure_rows(figures: list[tuple[str, object]]) -> list[tuple[object, ...]]:
    rows = []
    for name, value in figures:
        leaf = name.rsplit(".", 1)[-1]
        unit = _unit(leaf) if isinstance(value, int | float) and not isinstance(value, bool) else ""
        shown = _number(value) if not isinstance(value, str) else value
        if isinstance(value, dict):  # an empty mapping
            shown = "none"
        rows.append((name, shown, unit))
    return rows


def _records_table(name: str, records: list[dict[str, Any]]) -> list[str]:
    columns = list(dict.fromkeys(key for record in records for key in record))
    header = tuple(f"{_words(c)} ({_unit(c)})" if _unit(c) else _words(c) for c in columns)
    rows = [tuple(_plain(record.get(c, "")) for c in columns) for record in records]
    return [f"#### {name}", "", *_table(header, rows, "r" * len(columns))]


def _impact(result: RunResult) -> list[str]:
    m, metrics = result.messages, dict(result.metrics)
    lines = ["### Customer messages", ""]
    rows = [("**lost**" if k == "lost" else k, _number(m.get(k, 0)), w) for k, w in _MESSAGE_FIGURES]
    lines += _table(("messages", "count", "meaning"), rows, "lrl")
    lines += ["### Timings", ""]
    rows = [(_words(k), "never" if v is None else f"{v:.1f}") for k, v in result.timings.items()]
    lines += _table(("timing", "seconds"), rows, "lr")
    latency = metrics.pop("api_latency", None)
    if isinstance(latency, dict) and latency:
        quantiles = [key for key in latency if key != "count"]
        lines += ["### API latency (through the gateway)", ""]
        lines += _table(
            ("requests", *(f"{q} (ms)" for q in quantiles)),
            [(_number(latency.get("count", 0)), *(_number(round(latency[q] * 1000, 1)) for q in quantiles))],
            "r" * (1 + len(quantiles)),
        )
    statuses = metrics.pop("api_statuses", None)
    if isinstance(statuses, dict) and statuses:
        lines += ["### API responses", ""]
        rows = [(code, _number(n)) for code, n in sorted(statuses.items())]
        lines += _table(("HTTP status", "responses"), rows, "lr")
    alerts = metrics.pop("alerts_fired", None)
    if isinstance(alerts, dict):
        lines += ["### Alerts", ""]
        if alerts:
            rows = [(name, _number(t)) for name, t in sorted(alerts.items(), key=lambda item: item[1])]
            lines += _table(("alert", "first fired at t (s)"), rows, "lr")
        else:
            lines += ["No alert fired.", ""]
    figures: list[tuple[str, object]] = []
    tables: dict[str, list] = {}
    for name, value in metrics.items():
        _flatten(name, value, figures, tables)
    if figures:
        lines += ["### Other figures", ""]
        lines += _table(("figure", "value", "unit"), _figure_rows(figures), "lrl")
    for name, records in tables.items():
        lines += _records_table(name, records)
    return lines


def _checks_table(checks: list[Check]) -> list[str]:
    if not checks:
        return ["Nothing.", ""]
    return _table(
        ("check", "observed", "expected"), [(c.name, c.observed, c.expected) for c in checks], "lll"
    )


def _timeline_rows(run: Run) -> list[tuple[object, ...]]:
    rows = []
    for event in run.timeline.events():
        what = _readable(event.message)
        rows.append(
            (f"{event.t:.1f}", event.phase, what if event.kind == "phase" else f"{event.kind}: {what}")
        )
    return rows


def render_debrief(result: RunResult, run: Run) -> str:
    scenario = run.scenario
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
    ]
    settings = scenario.settings(result.profile)
    if settings:
        lines += [f"Settings of the `{result.profile}` profile:", ""]
        lines += _table(("setting", "value"), sorted(settings.items()), "ll")
    lines += ["## Timeline", ""]
    lines += _table(("t (s)", "phase", "what happened"), _timeline_rows(run), "rll")
    lines += ["## Impact", ""]
    lines += _impact(result)
    lines += ["## What held", ""]
    lines += _checks_table(held)
    lines += ["## What failed", ""]
    lines += _checks_table(failed)
    if result.error:
        lines += [f"**The harness itself failed**: {result.error}", ""]
    lines += ["## Action items", ""]
    if failed:
        lines += [
            f"- Fix what let `{c.name}` fail; rerun with seed {result.seed} to reproduce." for c in failed
        ]
    lines += [f"- Runbook step to rehearse: {step}" for step in scenario.drill.runbook]
    return "\n".join(lines) + "\n"
