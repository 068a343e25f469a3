"""The story of a drill: when the fault began, was acknowledged, mitigated, recovered; and its score.

The score (also in the README, "Drills"):

    not recovered by the responders (time limit, or stopped): 0
    otherwise 100
      - 10 for each hint taken                       (HINT_COST)
      -  1 for each whole minute from the fault to recovery, at most 40
      - 15 when nobody acknowledged before the service was mitigated
      - 50 when any acknowledged message was lost    (a remedy that loses data)
    and never below 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

HINT_COST = 10
MINUTE_COST, MAX_TIME_COST = 1, 40
LATE_ACK_COST = 15
DATA_LOSS_COST = 50


@dataclass
class DrillStory:
    """Run times (seconds since the drill began) of the drill's milestones, and what people did."""

    fault_at: float | None = None
    detected_at: float | None = None  # the first alert
    acknowledged_at: float | None = None
    mitigated_at: float | None = None
    recovered_at: float | None = None
    ended: str = "running"  # recovered | time-limit | stopped | error
    hints_used: int = 0
    lost: int = 0
    entries: list[dict[str, Any]] = field(default_factory=list)  # notes, actions, hints, acks, docker

    @property
    def recovered(self) -> bool:
        return self.ended == "recovered" and self.recovered_at is not None

    def since_fault(self, at: float | None) -> float | None:
        if at is None or self.fault_at is None:
            return None
        return round(max(0.0, at - self.fault_at), 1)

    def durations(self) -> dict[str, float | None]:
        return {
            "time_to_detect_s": self.since_fault(self.detected_at),
            "time_to_acknowledge_s": self.since_fault(self.acknowledged_at),
            "time_to_mitigate_s": self.since_fault(self.mitigated_at),
            "time_to_recover_s": self.since_fault(self.recovered_at) if self.recovered else None,
        }

    def score(self) -> int:
        return drill_score(
            recovered=self.recovered,
            hints=self.hints_used,
            recover_s=self.durations()["time_to_recover_s"],
            acknowledged_before_mitigation=self.acknowledged_at is not None
            and (self.mitigated_at is None or self.acknowledged_at <= self.mitigated_at),
            lost=self.lost,
        )

    def as_dict(self) -> dict[str, Any]:
        story = {k: round(v, 1) if isinstance(v, float) else v for k, v in asdict(self).items()}
        return {
            **story,
            "recovered": self.recovered,
            "durations": self.durations(),
            "score": self.score(),
        }


def drill_score(
    recovered: bool, hints: int, recover_s: float | None, acknowledged_before_mitigation: bool, lost: int
) -> int:
    """The score of the module docstring: 0 unless recovered, then 100 less the costs, at least 0."""
    if not recovered:
        return 0
    score = 100 - HINT_COST * hints
    score -= min(MAX_TIME_COST, MINUTE_COST * int((recover_s or 0.0) // 60))
    if not acknowledged_before_mitigation:
        score -= LATE_ACK_COST
    if lost > 0:
        score -= DATA_LOSS_COST
    return max(0, score)
