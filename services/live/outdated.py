"""Outdated web-app builds: who still connects with one, and the accounts the on-call blocked.

The postmortem's operators found the accounts whose stale builds kept hammering the live servers and
blocked their traffic. `StaleClients` counts, per agent, handshakes at a protocol version the server
does not speak (served at ``GET /stale-clients``); `Blocklist` is the set of agents an operator
blocked (the Redis set ``live:blocked_agents``), re-read every second. A blocked agent's stale tabs
are closed 4002 ("reload"), so they stop, whatever LIVE_STALE_CLIENT_CLOSE says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.common import keys

log = logging.getLogger("live.outdated")
_MAX_AGENTS = 100_000  # bounded memory whatever a storm brings


@dataclass
class StaleSeen:
    handshakes: int = 0
    last_at: float = 0.0  # the event loop's clock


class StaleClients:
    """Handshakes at an outdated protocol version, per agent."""

    def __init__(self) -> None:
        self._seen: dict[str, StaleSeen] = {}

    def saw(self, agent: str, now: float) -> None:
        seen = self._seen.get(agent)
        if seen is None:
            if len(self._seen) >= _MAX_AGENTS:
                return
            seen = self._seen[agent] = StaleSeen()
        seen.handshakes += 1
        seen.last_at = now

    def report(self, now: float) -> dict[str, dict[str, float]]:
        """Per agent: stale handshakes so far and seconds since the last one."""
        return {
            agent: {"handshakes": seen.handshakes, "last_seen_s_ago": round(now - seen.last_at, 2)}
            for agent, seen in self._seen.items()
        }


class Blocklist:
    """The agents blocked for running an outdated build, as the Redis set holds them."""

    def __init__(self, client: aioredis.Redis, refresh_s: float = 1.0) -> None:
        self._client = client
        self._refresh_s = refresh_s
        self.agents: frozenset[str] = frozenset()

    def __contains__(self, agent: str) -> bool:
        return agent in self.agents

    async def run(self) -> None:
        while True:
            with contextlib.suppress(RedisError, OSError):  # keep the last known set while Redis is away
                self.agents = frozenset(await self._client.smembers(keys.LIVE_BLOCKED_AGENTS))
            await asyncio.sleep(self._refresh_s)
