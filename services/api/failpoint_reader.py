"""Reading failpoints on the request path: cached for a second, never failing a request."""

from __future__ import annotations

import asyncio

from services.common import failpoints

SLOW_CONVERSATIONS = "api.slow_conversations"
LATENCY_MS = "api.latency_ms"

_MAX_LATENCY_S = 120.0  # a typo in a drill must not hold requests for hours


class FailpointReader(failpoints.FailpointReader):
    async def hold_if_asked(self) -> None:
        """Sleep for `api.latency_ms` when it is set to a positive number."""
        value = await self.get(LATENCY_MS)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            await asyncio.sleep(min(value / 1000.0, _MAX_LATENCY_S))
