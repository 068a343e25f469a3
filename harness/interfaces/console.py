"""What a person sees while a run goes and when it ends: a live line, then a table."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from harness.checks.checker import check_messages

if TYPE_CHECKING:
    from harness.engine.runner import Run
    from harness.record.report import RunResult

_console = Console(stderr=True)
_VERDICT_STYLE = {"held": "bold green", "deviated": "bold red", "error": "bold yellow"}


def _progress_line(run: Run, previous: dict[str, float]) -> Text:
    ops = run.history.op_count
    now = time.monotonic()
    rate = (ops - previous.get("ops", 0)) / max(now - previous.get("at", now - 1), 1e-6)
    previous.update(ops=ops, at=now)
    stats = run.load.stats if run.load else None
    errors = stats.errors() if stats else 0
    waiting = check_messages(run.history, op_kind=run.scenario.message_op_kinds).lost
    return Text(
        f"[{run.timeline.elapsed():6.1f}s] {run.scenario.id} ({run.profile}) phase={run.timeline.phase:8} "
        f"ops/s={rate:5.1f} errors={errors} acked-not-yet-seen={waiting}"
    )


@contextmanager
def progress_printer() -> Iterator[Callable[[Run], None]]:
    """A live progress line on a terminal; one line every 5 s otherwise (CI logs)."""
    previous: dict[str, float] = {}
    if _console.is_terminal:
        with Live(console=_console, refresh_per_second=2, transient=True) as live:
            yield lambda run: live.update(_progress_line(run, previous))
        return
    last = [0.0]

    def plain(run: Run) -> None:
        if time.monotonic() - last[0] >= 5:
            last[0] = time.monotonic()
            print(_progress_line(run, previous).plain, file=sys.stderr, flush=True)

    yield plain


def results_table(results: Sequence[RunResult]) -> Table:
    table = Table(title="Outage Lab")
    for column in (
        "scenario",
        "profile",
        "verdict",
        "acked",
        "lost",
        "dup",
        "detect s",
        "recover s",
        "replay s",
    ):
        table.add_column(column)
    for r in results:
        m, t = r.messages, r.timings

        def seconds(name: str, timings: dict = t) -> str:
            value = timings.get(name)
            return "-" if value is None else f"{value:.1f}"

        table.add_row(
            r.scenario,
            r.profile,
            Text(r.verdict, style=_VERDICT_STYLE[r.verdict]),
            str(m.get("acked", "-")),
            str(m.get("lost", "-")),
            str(m.get("duplicated", "-")),
            seconds("time_to_detect_s"),
            seconds("time_to_recover_s"),
            seconds("replay_s"),
        )
    return table


def print_result(result: RunResult, report_dir: Path | None = None, console: Console | None = None) -> None:
    """The verdict table, each failed check, and where the report is (on stdout unless `console`)."""
    out = console or Console(width=120)
    out.print(results_table([result]))
    for check in result.failed_checks:
        what = f"{check.name}: {check.observed} (expected {check.expected})"
        out.print(f"[red]failed[/red] {escape(what)}")
    if result.error:
        out.print(f"[yellow]harness error[/yellow] {escape(result.error)}")
    if report_dir:
        out.print(f"report: {escape(str(report_dir))}/summary.json, debrief.md, timeline.jsonl")
