"""The debrief reads like a postmortem: figures in tables with their units, no Python reprs, and
table cells that stay cells whatever the text in them."""

from __future__ import annotations

from types import SimpleNamespace

from harness.checks.check import Check
from harness.engine.scenario import scenario_class
from harness.record.report import RunResult, render_debrief
from harness.record.timeline import Timeline


def _debrief(only_metrics: dict | None = None, **metrics: object) -> str:
    scenario = scenario_class("worker-crash")()
    timeline = Timeline()
    timeline.enter("setup")
    timeline.add("note", f"profile vulnerable: {scenario.settings('vulnerable')}")
    timeline.add("note", "bulk drain: {'applied': 1000, 'stalled_at': None}")
    timeline.add("symptom", "worker log says: a | b\nsecond line")
    result = RunResult(
        scenario=scenario.id,
        title=scenario.title,
        profile="vulnerable",
        seed=3,
        verdict="deviated",
        messages={"attempted": 1200, "acked": 1100, "lost": 37, "duplicated": 0},
        checks=[
            Check("messages.lost", False, "37 | acknowledged", "0 acknowledged lost"),
            Check("messages.duplicated", True, "0", "0 applied twice"),
        ],
        timings={"time_to_detect_s": None, "time_to_recover_s": 16.24, "replay_s": 5.0},
        metrics=only_metrics
        if only_metrics is not None
        else {
            "load_rate_per_s": 40,
            "api_statuses": {"202": 1100, "503": 100},
            "api_latency": {"count": 1200, "p50": 0.0045, "p99": 0.0243},
            "alerts_fired": {"queue_backlog": 21.5},
            **metrics,
        },
        wall_s=33.4,
    )
    return render_debrief(result, SimpleNamespace(scenario=scenario, timeline=timeline))


def _table_rows(debrief: str) -> list[str]:
    return [line for line in debrief.splitlines() if line.startswith("|")]


def test_no_python_repr_reaches_the_debrief():
    debrief = _debrief(gateway={"restart_peak_ratio": 1.4, "chatbot": {"longest_gap_s": 2.5}})
    for repr_mark in ("{'", "'}", "': ", "None", "True", "False"):
        assert repr_mark not in debrief, repr_mark
    assert "note: profile vulnerable: OUTBOX on, " in debrief and "ACK_AFTER_WORK off, " in debrief
    assert "bulk drain: applied 1,000, stalled_at never" in debrief


def test_figures_are_table_rows_with_units():
    rows = _table_rows(_debrief(outage_s=31.26, memory_watermark_bytes=123456789, green_pct=97.5))
    assert "| **lost** | 37 | acknowledged, never observed |" in rows
    assert "| time to recover | 16.2 |" in rows and "| time to detect | never |" in rows
    assert "| 1,200 | 4.5 | 24.3 |" in rows  # API latency in ms
    assert "| 503 | 100 |" in rows
    assert "| queue_backlog | 21.5 |" in rows
    assert "| load_rate_per_s | 40 | /s |" in rows
    assert "| outage_s | 31.3 | s |" in rows
    assert "| memory_watermark_bytes | 123,456,789 | bytes |" in rows
    assert "| green_pct | 97.5 | % |" in rows


def test_nested_figures_get_dotted_names_and_lists_of_records_their_own_table():
    debrief = _debrief(
        gateway={
            "chatbot": {"longest_gap_s": 2.5},
            "over_time": [{"t_s": 1, "size": "large", "rate_per_s": 3.5}, {"t_s": 2, "size": "ordinary"}],
        }
    )
    assert "| gateway.chatbot.longest_gap_s | 2.5 | s |" in _table_rows(debrief)
    assert "#### gateway.over_time" in debrief
    assert "| t (s) | size | rate (/s) |" in debrief
    assert "| 2 | ordinary |  |" in debrief


def test_pipes_and_line_breaks_stay_inside_their_cell():
    debrief = _debrief()
    assert "| symptom: worker log says: a \\| b<br>second line |" in debrief
    assert "| messages.lost | 37 \\| acknowledged | 0 acknowledged lost |" in debrief
    # Every row of every table has as many cells as its header.
    tables, current = [], []
    for line in [*debrief.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line.replace("\\|", "").count("|") - 1)
        elif current:
            tables.append(current)
            current = []
    assert tables and all(len(set(widths)) == 1 for widths in tables), tables


def test_the_postmortem_sections_are_all_there_in_order():
    debrief = _debrief()
    headings = [line for line in debrief.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Overview",
        "## Timeline",
        "## Impact",
        "## What held",
        "## What failed",
        "## Action items",
    ]
    assert "Fix what let `messages.lost` fail; rerun with seed 3" in debrief


def test_a_run_without_figures_has_no_figure_tables_and_no_empty_rows():
    debrief = _debrief(only_metrics={})
    assert "### Other figures" not in debrief and "### API latency" not in debrief
    assert not [row for row in _table_rows(debrief) if row.startswith("|  |")]
    assert "### Customer messages" in debrief and "### Timings" in debrief
