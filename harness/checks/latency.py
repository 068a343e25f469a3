"""Latency percentiles (nearest-rank), in seconds."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of sorted values: the smallest with at least pct% of all at or below it."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must be within 0..100, got {pct}")
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True, slots=True)
class LatencySummary:
    count: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def summarize(values: Iterable[float]) -> LatencySummary:
    return summarize_sorted(sorted(values))


def summarize_sorted(ordered: Sequence[float]) -> LatencySummary:
    """`summarize` of values already in ascending order (a million of them, sorted by numpy)."""
    if not ordered:
        return LatencySummary(count=0, p50=None, p90=None, p99=None, max=None)
    return LatencySummary(
        count=len(ordered),
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p99=percentile(ordered, 99),
        max=ordered[-1],
    )
