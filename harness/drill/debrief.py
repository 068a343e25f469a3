"""The drill's part of the debrief: its story, the people's steps, the runbook beside them, the score."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.drill.story import DATA_LOSS_COST, HINT_COST, LATE_ACK_COST, MAX_TIME_COST

if TYPE_CHECKING:
    from harness.drill.engine import DrillSession

ENDINGS = {
    "recovered": "recovered by the responders",
    "time-limit": "**not recovered**: the time limit was reached and the harness healed the stack",
    "stopped": "**not recovered**: stopped by the facilitator; the harness healed the stack",
    "error": "**not recovered**: the harness itself failed",
}


def _at(value: float | None) -> str:
    return "never" if value is None else f"t={value:.1f} s"


def _took(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def render_drill_story(session: DrillSession) -> str:
    story = session.story
    durations = story.durations()
    people = [e for e in story.entries if e["kind"] in ("responder-note", "operator-action", "hint", "ack")]
    docker = [e for e in story.entries if e["kind"] == "docker"]
    healed = [e.message for e in session.run.timeline.events("heal")]
    error = session.result.error if session.result else None
    lines = [
        "## The drill",
        "",
        f"Ended: {ENDINGS.get(story.ended, story.ended)}"
        + (f" (and then the harness failed: {error})" if error and story.ended != "error" else "")
        + f". **Score {story.score()}/100.** "
        f"Time limit {session.options.time_limit_s:.0f} s; the steady state had to hold for "
        f"{session.options.hold_s:g} s; the fault went in {session.delay_s:g} s after the steady load began.",
        "",
        "| milestone | when | since the fault |",
        "| --- | ---: | ---: |",
        f"| fault began | {_at(story.fault_at)} | |",
        f"| detected (first alert) | {_at(story.detected_at)} | {_took(durations['time_to_detect_s'])} |",
        f"| acknowledged | {_at(story.acknowledged_at)} | {_took(durations['time_to_acknowledge_s'])} |",
        f"| mitigated (steady state holds again) | {_at(story.mitigated_at)} | "
        f"{_took(durations['time_to_mitigate_s'])} |",
        f"| recovered (held {session.options.hold_s:g} s) | "
        f"{_at(story.recovered_at if story.recovered else None)} | {_took(durations['time_to_recover_s'])} |",
        "",
        f"- hints used: {story.hints_used} of {len(session.scenario.drill.hints)} ({HINT_COST} points each)",
        f"- acknowledged messages lost: **{story.lost}**",
        "",
        "### What the responders did",
        "",
    ]
    lines += [f"- t={e['t']:.1f} s {e['kind']}: {e['message']}" for e in people] or ["- nothing"]
    lines += [
        "",
        "### Container starts, stops and restarts (Docker's event stream, the fault's own included)",
        "",
    ]
    lines += [f"- t={e['t']:.1f} s {e['message']}" for e in docker] or ["- none"]
    lines += ["", "### Beside the runbook", "", "The scenario's runbook:", ""]
    lines += [f"{n}. {step}" for n, step in enumerate(session.scenario.drill.runbook, 1)]
    lines += [
        "",
        "What the harness had to do after the responders (empty when they left the stack whole):",
        "",
    ]
    lines += [f"- {line}" for line in healed] or ["- nothing"]
    lines += [
        "",
        "### Score",
        "",
        f"0 when not recovered; otherwise 100, less {HINT_COST} a hint, 1 a whole minute from the fault to "
        f"recovery (at most {MAX_TIME_COST}), {LATE_ACK_COST} when nobody acknowledged before mitigation, "
        f"{DATA_LOSS_COST} when an acknowledged message was lost; never below 0.",
        "",
    ]
    return "\n".join(lines)


def add_drill_story(report_dir: Path, session: DrillSession) -> None:
    """Put the drill's story into debrief.md, before the run's timeline."""
    path = report_dir / "debrief.md"
    debrief = path.read_text()
    story = render_drill_story(session)
    marker = "## Timeline"
    debrief = (
        debrief.replace(marker, story + "\n" + marker, 1) if marker in debrief else debrief + "\n" + story
    )
    path.write_text(debrief)
