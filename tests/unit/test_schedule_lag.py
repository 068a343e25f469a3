"""The record says how late the harness's own event loop ran, so a slow observer is not taken for a
slow system."""

from __future__ import annotations

import asyncio
import time

import pytest

from harness.observe.schedule_lag import LAG_STREAM, watch_schedule, worst_lag_s


@pytest.mark.asyncio
async def test_a_loop_held_by_blocking_work_is_recorded_as_late_by_about_as_long() -> None:
    rows: list[dict[str, float]] = []
    stop = asyncio.Event()
    watcher = asyncio.create_task(
        watch_schedule(lambda stream, **row: rows.append({**row}), stop, tick_s=0.01)
    )
    await asyncio.sleep(0.05)
    time.sleep(0.3)  # blocking work on the loop: every timer behind it fires late
    await asyncio.sleep(0.05)
    stop.set()
    await watcher

    worst = worst_lag_s(rows)
    assert worst is not None and worst >= 0.25


@pytest.mark.asyncio
async def test_each_second_it_watched_leaves_a_row_in_the_lag_stream_even_the_last() -> None:
    streams: set[str] = set()
    rows: list[dict[str, float]] = []

    def sink(stream: str, **row: float) -> None:
        streams.add(stream)
        rows.append(row)

    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_schedule(sink, stop, tick_s=0.01))
    await asyncio.sleep(0.2)
    stop.set()
    await watcher

    assert streams == {LAG_STREAM}
    assert rows and all(row["worst_s"] >= 0 for row in rows)
    assert rows[-1]["second"] == int(time.time()) or rows[-1]["second"] == int(time.time()) - 1


def test_the_worst_lag_is_read_from_the_seconds_that_overlap_a_window() -> None:
    rows = [
        {"second": 100, "worst_s": 0.9},
        {"second": 101, "worst_s": 0.02},
        {"second": 102, "worst_s": 0.3},
    ]

    assert worst_lag_s(rows) == 0.9
    assert worst_lag_s(rows, start=101.5, end=102.5) == 0.3
    assert worst_lag_s(rows, start=101.2, end=101.8) == 0.02
    assert worst_lag_s(rows, start=200, end=300) is None
    assert worst_lag_s([]) is None
