"""Whether the run had the machine: the CPU time the hypervisor gave to someone else (steal) and
the time the CPUs sat waiting on the disk (iowait), second by second, from the kernel's /proc/stat.

Every figure of a run is measured on a machine that may be shared. A second in which the
hypervisor runs another guest on our CPUs stalls the stack and the harness alike, and no setting of
the product can help it; a record that carries those seconds lets a reader tell a slow product from
a machine that was not there. Each second goes to a sink (`run.sample`, stream "machine");
`machine_summary` reads them back from a record. Recorded and reported, never judged.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.engine.waiting import pause

MACHINE_STREAM = "machine"
PROC_STAT = Path("/proc/stat")
# The columns of /proc/stat's "cpu" line, in the kernel's order (man 5 proc).
_COLUMNS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_times(stat_text: str) -> dict[str, float]:
    """The whole machine's CPU seconds by column, from the text of /proc/stat."""
    for line in stat_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            ticks = os.sysconf("SC_CLK_TCK")
            values = [int(v) for v in fields[1 : 1 + len(_COLUMNS)]]
            values += [0] * (len(_COLUMNS) - len(values))  # old kernels lack the later columns
            return {name: value / ticks for name, value in zip(_COLUMNS, values, strict=True)}
    raise ValueError("no 'cpu' line in /proc/stat")


def _read() -> dict[str, float] | None:
    try:
        return cpu_times(PROC_STAT.read_text())
    except (OSError, ValueError):
        return None  # not Linux, or a kernel that hides it: nothing to record


async def watch_machine(sink: Callable[..., None], stop: asyncio.Event, every_s: float = 1.0) -> None:
    """Until `stop`, sink one row per `every_s`: the CPU seconds spent busy, stolen and waiting on
    I/O in that interval, across every CPU of the machine."""
    before = _read()
    if before is None:
        return
    while not await pause(stop, every_s):
        now = _read()
        if now is None:
            return
        delta = {name: round(now[name] - before[name], 3) for name in _COLUMNS}
        busy = sum(delta[name] for name in ("user", "nice", "system", "irq", "softirq"))
        sink(
            MACHINE_STREAM,
            second=int(time.time()),
            busy_cpu_s=round(busy, 3),
            stolen_cpu_s=delta["steal"],
            iowait_cpu_s=delta["iowait"],
        )
        before = now


def machine_summary(
    rows: Iterable[Mapping[str, Any]], start: float = 0.0, end: float = float("inf")
) -> dict[str, float] | None:
    """CPU seconds stolen and spent waiting on I/O in the seconds within [start, end) (wall
    clock), in all and in the worst second; None without rows."""
    chosen = [row for row in rows if start <= row["second"] < end]
    if not chosen:
        return None
    return {
        "seconds": len(chosen),
        "stolen_cpu_s": round(sum(row["stolen_cpu_s"] for row in chosen), 2),
        "worst_second_stolen_cpu_s": max(row["stolen_cpu_s"] for row in chosen),
        "iowait_cpu_s": round(sum(row["iowait_cpu_s"] for row in chosen), 2),
        "worst_second_iowait_cpu_s": max(row["iowait_cpu_s"] for row in chosen),
    }
