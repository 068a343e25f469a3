"""Reconnect policies: how long a live client waits before its next connection attempt.

Two policies, so a scenario can show the difference:

- ``FullJitterBackoff``: the delay is uniform in ``[0, min(cap, base * 2**attempt)]``. The attempt counter
  resets only once a session proved useful (``on_stable``: a snapshot or resume arrived), unless
  ``reset_on_handshake`` is set. Thousands of clients dropped at once spread out instead of returning
  together, and a server that accepts then immediately closes does not keep them in a tight loop.
- ``NaiveBackoff``: exponential without jitter, reset after every successful handshake. When a server
  accepts and then closes at once (a stale client told to "reconnect now"), every client comes back
  after ``base`` seconds, forever, in lockstep: the reconnect storm.
"""

from __future__ import annotations

import random
from typing import Protocol

_MAX_EXPONENT = 32  # 2**32 * base is far beyond any cap; avoids huge floats after many failures


class ReconnectPolicy(Protocol):
    def next_delay(self) -> float:
        """Seconds to wait before the next attempt (and count the attempt)."""
        ...

    def on_handshake(self) -> None:
        """The websocket handshake succeeded."""
        ...

    def on_stable(self) -> None:
        """The session delivered its snapshot or resume: the connection is really working."""
        ...


def _ceiling(base: float, cap: float, attempt: int) -> float:
    return min(cap, base * 2 ** min(attempt, _MAX_EXPONENT))


class FullJitterBackoff:
    def __init__(
        self,
        base: float = 0.5,
        cap: float = 30.0,
        reset_on_handshake: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError("need 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.reset_on_handshake = reset_on_handshake
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = _ceiling(self.base, self.cap, self.attempt)
        self.attempt += 1
        return self._rng.uniform(0, ceiling)

    def on_handshake(self) -> None:
        if self.reset_on_handshake:
            self.attempt = 0

    def on_stable(self) -> None:
        self.attempt = 0


class NaiveBackoff:
    def __init__(self, base: float = 0.5, cap: float = 30.0) -> None:
        if base <= 0 or cap < base:
            raise ValueError("need 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.attempt = 0

    def next_delay(self) -> float:
        delay = _ceiling(self.base, self.cap, self.attempt)
        self.attempt += 1
        return delay

    def on_handshake(self) -> None:
        self.attempt = 0

    def on_stable(self) -> None:
        self.attempt = 0


def policy_named(name: str, cap: float = 30.0) -> ReconnectPolicy:
    """The web app's reconnect policy for a `LIVE_CLIENT_RECONNECT` setting (full_jitter | naive)."""
    if name == "full_jitter":
        return FullJitterBackoff(cap=cap)
    if name == "naive":
        return NaiveBackoff(cap=cap)
    raise ValueError(f"unknown reconnect policy {name!r}: expected full_jitter or naive")
