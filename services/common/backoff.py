"""Jittered exponential backoff ("full jitter"): spreads reconnecting clients over time."""

from __future__ import annotations

import random


class Backoff:
    """Delay before the next attempt: uniform in [0, min(cap, base * 2**failures)].

    Full jitter keeps a crowd of clients that lost the same broker from retrying in lockstep.
    """

    def __init__(self, base: float = 0.2, cap: float = 5.0, rng: random.Random | None = None) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"backoff needs 0 < base <= cap, got base={base} cap={cap}")
        self.base = base
        self.cap = cap
        self.failures = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        """The largest delay the next attempt can draw."""
        # The exponent is bounded so a long outage never overflows a float.
        return min(self.cap, self.base * 2 ** min(self.failures, 32))

    def next_delay(self) -> float:
        """Record one more failure and return how long to wait before retrying."""
        delay = self._rng.uniform(0, self.ceiling())
        self.failures += 1
        return delay

    def reset(self) -> None:
        """The last attempt succeeded: the next failure starts from `base` again."""
        self.failures = 0
