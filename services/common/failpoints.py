"""Application failpoints: switches set at run time through the api's admin endpoint.

They live in a Redis hash so that every service sees them; services cache them for a second.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from services.common import keys

# Name -> what it does when set. The admin endpoint refuses any other name.
KNOWN = {
    "api.slow_conversations": (
        "conversation listing costs grow with the number of conversations (a bad release)"
    ),
    "api.latency_ms": "every api request waits this many milliseconds",
    "worker.pause": "the worker stops taking events",
    "worker.fail_effects": "the worker raises while applying effects",
    "worker.slow_ms": "the worker takes this many extra milliseconds per event (a slow downstream)",
    "relay.pause": "the relay stops publishing",
    "live.drop_updates": "the live server drops updates instead of sending them",
}


class FailpointCache:
    """Reads the failpoint hash at most once per `ttl` seconds (sync redis client)."""

    def __init__(self, client: Any, ttl: float = 1.0) -> None:
        self._client = client
        self._ttl = ttl
        self._values: dict[str, Any] = {}
        self._loaded_at = 0.0

    def get(self, name: str, default: Any = None) -> Any:
        now = time.monotonic()
        if now - self._loaded_at > self._ttl:
            with contextlib.suppress(Exception):  # failpoints must never take a service down
                self._values = decode(self._client.hgetall(keys.FAILPOINTS))
            self._loaded_at = now
        return self._values.get(name, default)


class FailpointReader:
    """The same for asyncio services: `load` reads the hash (see `decode`); never raises."""

    def __init__(self, load: Callable[[], Awaitable[dict[str, Any]]], ttl: float = 1.0) -> None:
        self._load = load
        self._ttl = ttl
        self._values: dict[str, Any] = {}
        self._loaded_at = float("-inf")

    async def get(self, name: str, default: Any = None) -> Any:
        now = time.monotonic()
        if now - self._loaded_at > self._ttl:
            self._loaded_at = now  # first, so concurrent readers do not all reload
            with contextlib.suppress(Exception):  # failpoints must never take a service down
                self._values = await self._load()
        return self._values.get(name, default)

    def forget(self) -> None:
        """Reload on the next read (after this process changed a failpoint)."""
        self._loaded_at = float("-inf")


def decode(raw: Mapping[Any, Any]) -> dict[str, Any]:
    """The failpoint hash as read from Redis: name -> JSON value."""
    return {_text(k): json.loads(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
