"""Reading failpoints on the request path: cached for a second, never failing a request."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

SLOW_CONVERSATIONS = "api.slow_conversations"
LATENCY_MS = "api.latency_ms"

_MAX_LATENCY_S = 120.0  # a typo in a drill must not hold requests for hours


class FailpointReader:
    def __init__(self, load: Callable[[], Awaitable[dict[str, Any]]], ttl: float = 1.0) -> None:
        self._load = load
        self._ttl = ttl
        self._values: dict[str, Any] = {}
        self._loaded_at = float("-inf")

    async def get(self, name: str, default: Any = None) -> Any:
        now = time.monotonic()
        if now - self._loaded_at > self._ttl:
            self._loaded_at = now  # first, so concurrent requests do not all reload
            with contextlib.suppress(Exception):  # failpoints must never take the api down
                self._values = await self._load()
        return self._values.get(name, default)

    def forget(self) -> None:
        """Reload on the next read (after this process changed a failpoint)."""
        self._loaded_at = float("-inf")

    async def hold_if_asked(self) -> None:
        """Sleep for `api.latency_ms` when it is set to a positive number."""
        value = await self.get(LATENCY_MS)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            await asyncio.sleep(min(value / 1000.0, _MAX_LATENCY_S))
