"""Waiting in stack tests: for a condition the stack reaches in its own time."""

from __future__ import annotations

from collections.abc import Callable

from harness.engine.waiting import WaitTimeout, wait_until_sync


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> bool:
    """Poll `condition` every half second; True as soon as it holds, False after `timeout`
    (the harness's one wait primitive, answering yes or no for an assertion)."""
    try:
        wait_until_sync(condition, timeout=timeout, what="the condition", interval=0.5)
    except WaitTimeout:
        return False
    return True
