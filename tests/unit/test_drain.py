"""The settle phase's drain: how long a run waits for acknowledged messages it has not seen yet.

It waits while anything could still bring them (an event in the outbox or on a queue, or effects
still arriving), and no longer: a message lost on the way never comes, whatever the timeout.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from harness.checks.checker import check_messages
from harness.engine import runner
from harness.record.history import History
from harness.record.timeline import Timeline


class _Run:
    """What the drain reads: the history (fed by `observer`) and the timeline it notes into."""

    def __init__(self, history: History, arrivals: list[tuple[float, str]]) -> None:
        self.history, self.timeline = history, Timeline()
        self.observer = self
        self._arrivals, self._started = arrivals, time.monotonic()

    async def read_available(self) -> None:
        now = time.monotonic() - self._started
        while self._arrivals and self._arrivals[0][0] <= now:
            _, key = self._arrivals.pop(0)
            self.history.observe("processed", key, time.time())


def _acked(keys: list[str]) -> History:
    history = History()
    for key in keys:
        history.invoke("client", "post_message", key).ok()
    return history


def _drain(run: _Run, waiting: dict[str, int] | Exception, timeout: float = 30) -> float:
    async def leftovers() -> dict[str, int]:
        if isinstance(waiting, Exception):
            raise waiting
        return waiting

    started = time.monotonic()
    asyncio.run(runner._drain(run, lambda: check_messages(run.history), timeout, leftovers))
    return time.monotonic() - started


@pytest.fixture(autouse=True)
def short_quiet(monkeypatch):
    """The drain's clock, a quarter of the real one: quiet after 1 s, a look every 0.25 s."""
    monkeypatch.setattr(runner, "QUIET_S", 1.0)
    monkeypatch.setattr(runner, "DRAIN_POLL_S", 0.25)


def test_a_lost_message_ends_the_drain_once_nothing_waits_and_no_effect_comes():
    run = _Run(_acked(["a", "b"]), arrivals=[(0, "a")])
    took = _drain(run, waiting={})
    assert took < 5, "the drain waited for a message nothing could still bring"
    assert "drain ended with 1 acknowledged messages unobserved" in run.timeline.events()[-1].message


def test_the_drain_keeps_waiting_while_events_wait_on_a_queue():
    run = _Run(_acked(["a", "b"]), arrivals=[])
    took = _drain(run, waiting={"events": 1}, timeout=1.5)
    assert took >= 1.5
    note = run.timeline.events()[-1].message
    assert "drain timed out" in note and note.endswith("last seen waiting: events: 1")


def test_a_broker_that_cannot_say_counts_as_something_still_waiting():
    run = _Run(_acked(["a"]), arrivals=[])
    took = _drain(run, waiting=ConnectionError("no broker node answered"), timeout=1.5)
    assert took >= 1.5


def test_effects_still_arriving_keep_the_drain_going_until_all_are_seen():
    run = _Run(_acked(["a", "b", "c"]), arrivals=[(0.25, "a"), (0.85, "b"), (1.45, "c")])
    _drain(run, waiting={})
    assert run.timeline.events()[-1].message == "drained: all 3 acknowledged messages observed"
