"""The timeline of a run: phases, fault injections, runbook actions, alerts, recoveries.

Everything a debrief needs to tell the story, in order, with seconds since the run began.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class TimelineEvent:
    t: float  # seconds since the run began
    at: float  # wall-clock unix time
    phase: str
    kind: str  # phase, fault, revert, action, alert, symptom, mark, recovered, note, error
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> TimelineEvent:
        return cls(
            float(entry["t"]),
            float(entry["at"]),
            str(entry["phase"]),
            str(entry["kind"]),
            str(entry["message"]),
            dict(entry.get("data") or {}),
        )


class Timeline:
    """The run's story as it happens; each event is handed to every sink (the record's file)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[TimelineEvent] = []
        self.sinks: list[Callable[[TimelineEvent], None]] = []
        self.started_mono = time.monotonic()
        self.started_at = time.time()
        self.phase = "setup"

    def elapsed(self) -> float:
        return time.monotonic() - self.started_mono

    def add(self, kind: str, message: str, **data: Any) -> TimelineEvent:
        event = TimelineEvent(round(self.elapsed(), 3), time.time(), self.phase, kind, message, data)
        with self._lock:
            self._events.append(event)
            for sink in self.sinks:
                sink(event)
        return event

    def enter(self, phase: str) -> None:
        self.phase = phase
        self.add("phase", f"phase {phase} begins")

    def events(self, kind: str | None = None) -> list[TimelineEvent]:
        with self._lock:
            return [e for e in self._events if kind is None or e.kind == kind]

    def first(self, kind: str, message_prefix: str = "") -> TimelineEvent | None:
        return next((e for e in self.events(kind) if e.message.startswith(message_prefix)), None)
