"""Figures about an outage's backlog, read from the history: what the clients were told while the
system was down, how much acknowledged work was still waiting when it came back, and how fast
that backlog was replayed.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.record.history import OK, History


@dataclass(frozen=True)
class Availability:
    """Operations invoked inside a window, and how many of them were acknowledged."""

    attempted: int
    acked: int

    @property
    def ratio(self) -> float | None:
        return self.acked / self.attempted if self.attempted else None


@dataclass(frozen=True)
class Replay:
    """The acknowledged work not yet observed at the recovery instant, and its replay."""

    backlog: int  # acked, invoked before recovery, not observed by then
    replayed: int  # of those, observed afterwards
    replay_s: float | None  # recovery until the last of them was observed; None if some never were

    @property
    def complete(self) -> bool:
        return self.replayed == self.backlog

    @property
    def rate_per_s(self) -> float | None:
        if not self.complete or not self.replay_s:
            return None
        return round(self.backlog / self.replay_s, 1)


def availability(history: History, since: float, until: float, op_kind: str) -> Availability:
    """Messages (keys) of `op_kind` first sent between two wall-clock instants, and how many were
    acknowledged; a retry with the same key is the same message, not another one."""
    ops = history.op_columns()
    first_sent: dict[str | None, float] = {}
    acked_keys: set[str | None] = set()
    for kind, key, outcome, invoked in zip(ops.kind, ops.key, ops.outcome, ops.invoke_wall, strict=True):
        if kind != op_kind:
            continue
        first_sent.setdefault(key, invoked)
        if outcome == OK:
            acked_keys.add(key)
    in_window = [key for key, invoked in first_sent.items() if since <= invoked <= until]
    return Availability(len(in_window), sum(key in acked_keys for key in in_window))


def replay_after(
    history: History, recovered_at: float, op_kind: str, effect_kind: str = "processed"
) -> Replay:
    """The backlog at `recovered_at` (wall clock) and how long its replay took."""
    ops = history.op_columns()
    acked_before = {
        key
        for kind, key, outcome, invoked in zip(ops.kind, ops.key, ops.outcome, ops.invoke_wall, strict=True)
        if kind == op_kind and key is not None and outcome == OK and invoked < recovered_at
    }
    effects = history.observation_columns(effect_kind)
    first_seen: dict[str, float] = {}
    for key, at in zip(effects.key, effects.at, strict=True):
        if key in acked_before and key not in first_seen:
            first_seen[key] = at
    waiting = [key for key in acked_before if first_seen.get(key, recovered_at + 1) > recovered_at]
    replayed_at = [first_seen[key] for key in waiting if key in first_seen]
    complete = len(replayed_at) == len(waiting)
    if not waiting:
        replay_s: float | None = 0.0
    elif complete:
        replay_s = round(max(replayed_at) - recovered_at, 3)
    else:
        replay_s = None
    return Replay(backlog=len(waiting), replayed=len(replayed_at), replay_s=replay_s)
