"""`make bench`: each figure beside its ceiling, both measured in the same run on the same machine.

A figure alone says little on a shared machine; its ratio to a ceiling measured a moment earlier
says how far the harness or the pipeline is from what the parts below it can do. Prints one
markdown table and writes it, with the raw figures, to bench/results/latest.md and latest.json.
Exits 1 when a measurement could not be made (never because a figure is slow: the goals are
printed, not asserted).

    .venv/bin/python bench/ratios.py [--ops 1000000] [--messages 3000] [--tabs 1000,5000]
                                     [--flood-events 0] [--no-stack]

Rows that need the stack (pipeline, broker ceiling, relay replay, live connections, a scenario's
phases) are skipped with --no-stack.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    """One figure against its ceiling; `higher_is_better` says which way the ratio reads."""

    name: str
    figure: float
    unit: str
    ceiling: float
    ceiling_is: str
    goal: str = ""
    higher_is_better: bool = True

    @property
    def ratio(self) -> float:
        return self.figure / self.ceiling if self.ceiling else float("nan")


def _seconds(function: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def checker_rows(ops: int) -> list[Row]:
    """The checker against merely reading its input, and `outage check`'s read + judge.

    Reading and judging happen in a fresh process, as `outage check` runs: in this one, the
    million-operation history just built still fills the heap (measured: reading took 4.6-5.1 s
    here, 2.6 s in a process of its own)."""
    from checker_bench import build_message_history

    history, _ = build_message_history(ops, random.Random(1))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "history.jsonl"
        write_s, _ = _seconds(functools.partial(history.write_jsonl, path))
        del history  # the fresh process reads it without this one's heap around
        fresh = subprocess.run(
            [sys.executable, __file__, "--time-offline-check", str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
    timings = json.loads(fresh.stdout)
    raw_s, read_s, check_s = timings["raw_s"], timings["read_s"], timings["check_s"]
    return [
        Row(
            "checker on the record",
            check_s,
            "s",
            read_s,
            f"reading the same {ops:,}-op record",
            "<= 2 s",
            False,
        ),
        Row(
            "re-check offline (read + judge)",
            read_s + check_s,
            "s",
            raw_s,
            "reading its bytes",
            "<= 5 s",
            False,
        ),
        Row("record written", write_s, "s", raw_s, "reading its bytes", "", False),
    ]


def time_offline_check(path: Path) -> dict[str, float]:
    """Read a recorded history's bytes, then read it as a History and judge it, as `outage check` does."""
    from harness.checks.checker import check_messages
    from harness.record.history import History

    raw_s, _ = _seconds(path.read_bytes)
    read_s, loaded = _seconds(lambda: History.read_jsonl(path))
    check_s, _ = _seconds(lambda: check_messages(loaded))  # type: ignore[arg-type]
    return {"raw_s": raw_s, "read_s": read_s, "check_s": check_s}


def stack_measurements(
    messages: int, tabs: list[int], flood_events: int
) -> list[tuple[str, Callable[[], list[Row]]]]:
    """The stack's rows, each its own measurement, so that one which fails leaves the others. They
    share one stack and the raw broker's ceiling, measured first."""
    from harness.stack.compose_stack import ComposeStack

    stack = ComposeStack()
    shared: dict[str, Any] = {}

    def ceiling() -> Any:
        if "ceiling" not in shared:
            import pipeline_throughput

            stack.wait_healthy(240)
            shared["endpoints"] = stack.endpoints()
            shared["ceiling"] = pipeline_throughput.broker_ceiling(shared["endpoints"], messages)
        return shared["ceiling"]

    def pipeline_rows() -> list[Row]:
        import pipeline_throughput

        broker = ceiling()
        pipeline = asyncio.run(pipeline_throughput.measure(messages, 32, 20))
        replay = asyncio.run(pipeline_throughput.measure_replay(stack, messages))
        print(
            f"pipeline end-to-end p50 {pipeline.p50_s:.3f} s, p99 {pipeline.p99_s:.3f} s "
            f"(acked {pipeline.acked}, lost {pipeline.lost})",
            file=sys.stderr,
        )
        broker_is = "raw broker: confirmed persistent publishes into a quorum queue"
        return [
            Row("pipeline api -> worker", pipeline.end_to_end_per_s, "messages/s", broker.publish_per_s,
                broker_is, ">= 50%"),
            Row("relay replay after an outage", replay, "events/s", broker.publish_per_s, broker_is),
            Row("raw broker consumer", broker.consume_per_s, "messages/s", broker.publish_per_s,
                "raw broker publishes"),
        ]  # fmt: skip

    def live_rows(count: int) -> Callable[[], list[Row]]:
        def measure() -> list[Row]:
            import live_connections

            ceiling()
            return live_connections.rows(stack, count)

        return measure

    def flood_rows() -> list[Row]:
        import event_flood_bench

        broker = ceiling()
        return [
            Row(f"flood drained ({profile})", event_flood_bench.drain_rate(flood_events, profile), "events/s",
                broker.publish_per_s, "raw broker publishes")
            for profile in ("hardened", "vulnerable")
        ]  # fmt: skip

    measurements = [("pipeline", pipeline_rows)]
    measurements += [(f"live server, {count:,} tabs", live_rows(count)) for count in tabs]
    measurements.append((f"{PHASE_SCENARIO} phases", lambda: scenario_phase_rows(stack)))
    if flood_events:
        measurements.append(("flood", flood_rows))
    return measurements


PHASE_SCENARIO = "worker-crash"


def scenario_phase_rows(stack: object) -> list[Row]:
    """A scenario's wall time against what its phases must take: the waits it declares (steady,
    outage, load after the runbook) and the time the fault itself needs to undo (the recover phase:
    the stack coming back). The rest is the harness's own: setup, injecting, draining, judging."""
    from harness.engine.runner import run_scenario
    from harness.engine.scenario import scenario_class
    from harness.record.record import Record

    scenario = scenario_class(PHASE_SCENARIO)()
    with tempfile.TemporaryDirectory() as folder:
        result = run_scenario(scenario, stack, "hardened", 1, Path(folder))  # type: ignore[arg-type]
        if result.verdict == "error":
            raise RuntimeError(f"{PHASE_SCENARIO} ended in a harness error: {result.error}")
        events = Record.load(Path(folder)).timeline
    starts = [(e.phase, e.t) for e in events if e.kind == "phase"] + [("end", result.wall_s)]
    phases = {phase: round(end - start, 1) for (phase, start), (_, end) in itertools.pairwise(starts)}
    timing = scenario.timing
    needed = timing.steady_s + timing.outage_s + timing.after_recovery_s + phases.get("recover", 0.0)
    print(f"{PHASE_SCENARIO} phases (s): {phases}", file=sys.stderr)
    return [
        Row(
            f"{PHASE_SCENARIO} run wall time (hardened)",
            result.wall_s,
            "s",
            needed,
            "its declared waits + the stack's own recovery: "
            + ", ".join(f"{phase} {seconds:g}" for phase, seconds in phases.items()),
            "",
            False,
        )
    ]


def render(rows: list[Row], failures: list[str]) -> str:
    lines = [
        "| figure | value | ceiling (same run) | ratio | goal |",
        "| --- | ---: | --- | ---: | --- |",
    ]
    for row in rows:
        ratio = f"{row.ratio:.2f}" + ("" if row.higher_is_better else " (lower is better)")
        lines.append(
            f"| {row.name} | {row.figure:,.3g} {row.unit} | {row.ceiling:,.3g} ({row.ceiling_is}) | "
            f"{ratio} | {row.goal} |"
        )
    lines += [f"| {name} | not measured | | | |" for name in failures]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument(
        "--tabs", default="1000,5000", help="tab counts for the live server's memory per tab, comma-separated"
    )
    parser.add_argument(
        "--flood-events", type=int, default=0, help="0: leave the flood out (it takes minutes)"
    )
    parser.add_argument("--no-stack", action="store_true")
    parser.add_argument("--time-offline-check", type=Path, help=argparse.SUPPRESS)  # the fresh process
    args = parser.parse_args()
    if args.time_offline_check:
        print(json.dumps(time_offline_check(args.time_offline_check)))
        return 0

    rows: list[Row] = []
    failures: list[str] = []
    measurements: list[tuple[str, Callable[[], list[Row]]]] = [("checker", lambda: checker_rows(args.ops))]
    if not args.no_stack:
        tab_counts = [int(n) for n in args.tabs.split(",")]
        measurements += stack_measurements(args.messages, tab_counts, args.flood_events)
    for name, measure in measurements:
        try:
            rows += measure()
        except Exception:
            traceback.print_exc()
            failures.append(name)
    table = render(rows, failures)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(f"load average at the end: {os.getloadavg()[0]:.1f}\n\n" + table)
    (RESULTS / "latest.json").write_text(
        json.dumps({"rows": [{**asdict(r), "ratio": r.ratio} for r in rows], "failed": failures}, indent=2)
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
