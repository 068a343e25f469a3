"""Publishing live updates: one bounded Redis stream per channel, entry id = sequence number.

Any service may publish; the live server reads the streams and fans updates out to clients,
who resume from their last sequence with XRANGE as long as it is still in the history.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from services.common import keys

CHANNELS = ("views", "typing", "presence", "availability", "assignment")

# INCR and XADD in one script, so sequence numbers are gap-free and in stream order.
_PUBLISH = """
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], seq .. '-0', 'data', ARGV[2])
return seq
"""


class UnknownChannel(ValueError):
    pass


def _check(channel: str) -> None:
    if channel not in CHANNELS:
        raise UnknownChannel(f"unknown live channel {channel!r}; channels are {', '.join(CHANNELS)}")


def encode_update(channel: str, payload: dict[str, Any]) -> str:
    return json.dumps({"channel": channel, "at": time.time(), **payload}, separators=(",", ":"))


def publish(client: redis.Redis, channel: str, payload: dict[str, Any], history: int = 1000) -> int:
    """Append one update to a channel; returns its sequence number."""
    _check(channel)
    script = client.register_script(_PUBLISH)
    return int(
        script(
            keys=[keys.live_sequence(channel), keys.live_stream(channel)],
            args=[history, encode_update(channel, payload)],
        )
    )


async def publish_async(client: Any, channel: str, payload: dict[str, Any], history: int = 1000) -> int:
    """The same, for a `redis.asyncio.Redis` client."""
    _check(channel)
    script = client.register_script(_PUBLISH)
    seq = await script(
        keys=[keys.live_sequence(channel), keys.live_stream(channel)],
        args=[history, encode_update(channel, payload)],
    )
    return int(seq)
