"""The record says how much of the machine the run had: CPU seconds stolen by the hypervisor and
spent waiting on the disk, second by second, read from /proc/stat."""

from __future__ import annotations

import asyncio
import os

import pytest

from harness.observe import machine_share
from harness.observe.machine_share import MACHINE_STREAM, cpu_times, machine_summary, watch_machine

HZ = os.sysconf("SC_CLK_TCK")


def _stat(user: int, idle: int, iowait: int, steal: int) -> str:
    return (
        f"cpu  {user} 0 0 {idle} {iowait} 0 0 {steal} 0 0\n"
        f"cpu0 {user} 0 0 {idle} {iowait} 0 0 {steal} 0 0\nintr 1 2 3\n"
    )


def test_cpu_times_reads_the_machine_line_in_seconds():
    times = cpu_times(_stat(user=2 * HZ, idle=HZ, iowait=0, steal=HZ // 2))
    assert times["user"] == 2.0 and times["idle"] == 1.0 and times["steal"] == 0.5


def test_cpu_times_refuses_a_text_without_the_machine_line():
    with pytest.raises(ValueError, match="no 'cpu' line"):
        cpu_times("intr 1 2 3\n")


def test_each_second_records_what_was_stolen_and_waited_in_it(monkeypatch):
    readings = iter(
        cpu_times(text)
        for text in (
            _stat(0, 0, 0, 0),
            _stat(HZ, HZ // 2, HZ // 4, HZ // 2),
            _stat(2 * HZ, HZ, HZ // 4, HZ // 2),
        )
    )
    monkeypatch.setattr(machine_share, "_read", lambda: next(readings))
    stop, rows = asyncio.Event(), []

    def sink(stream: str, **row: float) -> None:
        assert stream == MACHINE_STREAM
        rows.append(row)
        if len(rows) == 2:
            stop.set()

    asyncio.run(watch_machine(sink, stop, every_s=0.01))
    assert [(r["busy_cpu_s"], r["stolen_cpu_s"], r["iowait_cpu_s"]) for r in rows] == [
        (1.0, 0.5, 0.25),
        (1.0, 0.0, 0.0),
    ]


def test_nothing_is_recorded_where_the_kernel_gives_no_cpu_times(monkeypatch):
    monkeypatch.setattr(machine_share, "PROC_STAT", machine_share.Path("/nonexistent/stat"))
    rows: list[dict] = []
    asyncio.run(watch_machine(lambda stream, **row: rows.append(row), asyncio.Event(), every_s=0.01))
    assert rows == []


def test_the_summary_adds_up_the_seconds_of_a_window_and_names_the_worst():
    rows = [
        {"second": 100, "busy_cpu_s": 1.0, "stolen_cpu_s": 0.1, "iowait_cpu_s": 0.0},
        {"second": 101, "busy_cpu_s": 1.0, "stolen_cpu_s": 0.9, "iowait_cpu_s": 0.3},
        {"second": 102, "busy_cpu_s": 1.0, "stolen_cpu_s": 0.2, "iowait_cpu_s": 0.1},
    ]
    assert machine_summary(rows, 101, 103) == {
        "seconds": 2,
        "stolen_cpu_s": 1.1,
        "worst_second_stolen_cpu_s": 0.9,
        "iowait_cpu_s": 0.4,
        "worst_second_iowait_cpu_s": 0.3,
    }
    assert machine_summary(rows, 200) is None
