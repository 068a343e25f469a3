"""Admission control for the live server: a handshake rate limit and a per-agent connection cap.

Both protect the server from a reconnect storm: a refused client is closed cheaply (1013 / 4008)
before it costs a snapshot read or a seat in the fan-out.
"""

from __future__ import annotations

from collections import Counter


class HandshakeRateLimiter:
    """A token bucket: ``rate`` handshakes per second on average, bursts up to ``burst``.

    A rate of 0 admits everything.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self.burst
        self._updated: float | None = None

    def allow(self, now: float) -> bool:
        if self.rate <= 0:
            return True
        if self._updated is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class ConnectionCap:
    """At most ``limit`` open connections per key (agent); a limit of 0 admits everything."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def acquire(self, key: str) -> bool:
        if self.limit > 0 and self._open[key] >= self.limit:
            return False
        self._open[key] += 1
        return True

    def release(self, key: str) -> None:
        self._open[key] -= 1
        if self._open[key] <= 0:
            del self._open[key]

    def open_connections(self, key: str) -> int:
        return self._open[key]
