"""Waiting: the one way the harness and scenarios wait for something, and pause inside loops.

    await wait_until(lambda: cluster_is_whole(), timeout=300, what="one cluster of three nodes")

`wait_until` polls a predicate (plain or async) every `interval` seconds until it returns
something truthy, which it returns; at the timeout it raises `WaitTimeout` saying what it
waited for and for how long. A caller that treats a timeout as a symptom catches it and marks
the run; one that cannot go on lets it rise as a harness error. `wait_until_sync` is the same
for code that runs in a thread (faults, stack control).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
DEFAULT_INTERVAL_S = 1.0


class WaitTimeout(TimeoutError):
    """What was awaited did not happen in time."""

    def __init__(self, what: str, timeout: float, last: object = None) -> None:
        detail = f"; last seen: {last}" if last is not None else ""
        super().__init__(f"{what}: not within {timeout:g} s{detail}")
        self.what, self.timeout, self.last = what, timeout, last


async def wait_until(
    predicate: Callable[[], T | Awaitable[T]],
    *,
    timeout: float,
    what: str,
    interval: float = DEFAULT_INTERVAL_S,
) -> T:
    """Poll `predicate` until it returns something truthy (returned); WaitTimeout at `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise WaitTimeout(what, timeout, value)
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def wait_until_sync(
    predicate: Callable[[], T], *, timeout: float, what: str, interval: float = DEFAULT_INTERVAL_S
) -> T:
    """`wait_until` for blocking code (runs in a thread)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(what, timeout, value)
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`, waking as soon as `stop` is set; True when it was set."""
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
