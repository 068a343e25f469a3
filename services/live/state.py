"""What a connecting client needs from Redis: a consistent snapshot, or the updates it missed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from services.common import keys
from services.common.live_feed import CHANNELS

# The channels whose state a snapshot carries (view counts, agents' availability): a client that
# starts over from a snapshot shows them right. Typing, presence and assignment are events: a
# snapshot carries only their sequence, so what was published while a client was away is missed.
SNAPSHOT_STATE_CHANNELS = ("views", "availability")


@dataclass(frozen=True)
class Snapshot:
    channels: dict[str, dict[str, Any]]  # the snapshot frame's "channels"
    positions: dict[str, int]  # the sequence each channel's state is at


@dataclass(frozen=True)
class Missed:
    current: dict[str, int]  # latest sequence per channel
    updates: dict[str, list[tuple[int, str]]]  # per channel: (seq, data JSON) after the requested seq

    def first_retained_after(self) -> dict[str, int | None]:
        return {c: (self.updates[c][0][0] if self.updates[c] else None) for c in self.updates}


async def read_snapshot(client: aioredis.Redis) -> Snapshot:
    """Sequences and state read in one MULTI, so the state is exactly the state at those sequences
    as far as Redis is concerned."""
    async with client.pipeline(transaction=True) as pipe:
        for channel in CHANNELS:
            pipe.get(keys.live_sequence(channel))
        pipe.hgetall(keys.VIEW_COUNTS)
        pipe.hgetall(keys.AVAILABILITY)
        values = await pipe.execute()
    positions = {channel: _int(value) for channel, value in zip(CHANNELS, values, strict=False)}
    counts, availability = values[len(CHANNELS)], values[len(CHANNELS) + 1]
    channels: dict[str, dict[str, Any]] = {channel: {"seq": positions[channel]} for channel in CHANNELS}
    channels["views"]["counts"] = {view: _int(count) for view, count in counts.items()}
    channels["availability"]["agents"] = dict(availability)
    return Snapshot(channels, positions)


async def read_missed(client: aioredis.Redis, requested: dict[str, int]) -> Missed:
    """The updates after each requested sequence that the bounded history still holds."""
    names = [c for c in CHANNELS if c in requested]
    async with client.pipeline(transaction=True) as pipe:
        for channel in names:
            pipe.get(keys.live_sequence(channel))
            pipe.xrange(keys.live_stream(channel), min=f"({requested[channel]}-0", max="+")
        values = await pipe.execute()
    current, updates = {}, {}
    for i, channel in enumerate(names):
        current[channel] = _int(values[2 * i])
        updates[channel] = [
            (int(entry_id.split("-")[0]), fields["data"]) for entry_id, fields in values[2 * i + 1]
        ]
    return Missed(current, updates)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
