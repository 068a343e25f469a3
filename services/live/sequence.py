"""Sequence numbers of live updates: ordering on the client, resume decisions on the server.

Every channel numbers its updates 1, 2, 3... without gaps (``services.common.live_feed``). A client
applies ``last + 1`` next; a resume from ``last`` can be served only while the stream still holds
``last + 1`` (the history is bounded).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

from services.common.live_feed import CHANNELS


class Order(Enum):
    NEXT = "next"  # exactly the update the client expected
    DUPLICATE = "duplicate"  # already applied (a replay overlapping live traffic): drop it
    GAP = "gap"  # updates in between never arrived


def classify(last: int, seq: int) -> Order:
    if seq == last + 1:
        return Order.NEXT
    if seq <= last:
        return Order.DUPLICATE
    return Order.GAP


def can_replay(requested: int, current: int, first_retained_after: int | None) -> bool:
    """Whether one channel can resume from ``requested``.

    ``current`` is the channel's latest sequence; ``first_retained_after`` is the first sequence the
    history still holds after ``requested`` (None when it holds none).
    """
    if requested == current:
        return True  # nothing was missed
    if requested > current:
        return False  # the client is ahead: the history was reset under it
    return first_retained_after == requested + 1


def resume_is_possible(
    requested: Mapping[str, int],
    current: Mapping[str, int],
    first_retained_after: Mapping[str, int | None],
) -> bool:
    """A session resumes only when every channel can; otherwise it starts over from a snapshot."""
    if set(requested) != set(CHANNELS):
        return False
    return all(can_replay(requested[c], current[c], first_retained_after.get(c)) for c in CHANNELS)


class Cursor:
    """The last sequence a client applied on each channel."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}

    def observe(self, channel: str, seq: int) -> Order:
        """Classify an incoming update and advance past it unless it is a duplicate."""
        order = classify(self.last.get(channel, 0), seq)
        if order is not Order.DUPLICATE:
            self.last[channel] = seq
        return order

    def restart_from(self, positions: Mapping[str, int]) -> dict[str, int]:
        """Adopt a snapshot's positions; returns how many updates each channel skipped (missed)."""
        missed = {}
        for channel, seq in positions.items():
            previous = self.last.get(channel)
            if previous is not None and seq > previous:
                missed[channel] = seq - previous
            self.last[channel] = seq
        return missed

    def resume_positions(self) -> dict[str, int] | None:
        """What to send as ``resume`` on reconnect, once every channel has a position."""
        if not all(c in self.last for c in CHANNELS):
            return None
        return {c: self.last[c] for c in CHANNELS}
