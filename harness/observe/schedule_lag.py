"""Whether the harness itself kept its schedule: how late its event loop woke, second by second.

Every latency the harness records is measured by its own event loop. If that loop is busy (parsing
a hundred thousand effects, say), a reply that arrived on time is stamped late and an open-loop
request leaves late. A record that carries the loop's lateness lets a reader tell a slow system
from a slow observer. Each second's worst lateness goes to a sink (`run.sample`, stream
"harness_lag"); `worst_lag_s` reads it back from a record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from harness.engine.waiting import pause

LAG_STREAM = "harness_lag"
TICK_S = 0.05  # short enough to see a stall that would matter to a 0.3 s latency promise


async def watch_schedule(sink: Callable[..., None], stop: asyncio.Event, tick_s: float = TICK_S) -> None:
    """Sleep `tick_s` at a time until `stop`; sink one row per second: its worst lateness."""
    second, worst = int(time.time()), 0.0
    while True:
        asked = time.monotonic()
        if await pause(stop, tick_s):
            break
        late = max(0.0, time.monotonic() - asked - tick_s)
        now = int(time.time())
        if now != second:
            sink(LAG_STREAM, second=second, worst_s=round(worst, 4))
            second, worst = now, 0.0
        worst = max(worst, late)
    sink(LAG_STREAM, second=second, worst_s=round(worst, 4))


def worst_lag_s(
    rows: Iterable[Mapping[str, Any]], start: float = 0.0, end: float = float("inf")
) -> float | None:
    """The harness loop's worst lateness in the seconds that overlap [start, end) (wall clock);
    None without rows."""
    lags = [row["worst_s"] for row in rows if start <= row["second"] + 1 and row["second"] < end]
    return max(lags) if lags else None
