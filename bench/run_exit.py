"""How a bench that runs scenarios exits: non-zero when a run failed, so a script or CI notices.

A run failed when the harness could not carry it out (verdict `error`, exit 2) or when the hardened
profile, the product's promise, did not hold (exit 1). A vulnerable run that deviates did what it is
there to show."""

from __future__ import annotations

from collections.abc import Iterable

from harness.record.report import RunResult


def bench_exit_code(results: Iterable[RunResult]) -> int:
    return max(
        (result.exit_code for result in results if result.verdict == "error" or result.profile == "hardened"),
        default=0,
    )
