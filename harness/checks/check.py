"""A named check of a run, as summary.json lists it: passed, failed, or unknown (it could not be judged)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool
    observed: str
    expected: str
    why: str = ""  # where the expectation comes from: the postmortem, the product's promise, a fact
    unknown: bool = False  # the check raised or its figure was missing: neither held nor failed

    @property
    def status(self) -> str:
        return "unknown" if self.unknown else ("passed" if self.passed else "failed")

    @classmethod
    def not_judged(cls, name: str, expected: str, error: str, why: str = "") -> Check:
        """A check whose evidence could not be computed (Jepsen's `unknown`)."""
        return cls(name, False, f"unknown: {error}", expected, why, unknown=True)

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "passed": self.passed,
            "status": self.status,
            "observed": self.observed,
            "expected": self.expected,
        }
        if self.why:
            entry["why"] = self.why
        return entry

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> Check:
        return cls(
            str(entry["name"]),
            bool(entry["passed"]),
            str(entry["observed"]),
            str(entry["expected"]),
            str(entry.get("why", "")),
            entry.get("status") == "unknown",
        )


def verdict_of(checks: list[Check]) -> str:
    """held when every check passed; deviated when any failed; unknown when the rest could not be judged."""
    if any(c.status == "failed" for c in checks):
        return "deviated"
    if any(c.unknown for c in checks):
        return "unknown"
    return "held"
