"""Admission control on the request path: what the api agrees to work on, and for how long.

Per route, at most `route_limit` requests are worked on at once and one caller holds at most
`caller_limit` of a read route's; a request that cannot get a slot within `queue_timeout_s` is refused
(stale work is dropped, not done late), and work on an admitted request stops at its deadline.
A caller whose read ran out of its deadline is told to come back later, after half to all of
`deadline_cooldown_s` (jittered, so callers who ran out together do not come back together), and
held to it: its reads of that route are refused before any work until then, so a caller whose every
read is too big for the deadline cannot keep the api busy with work that will be thrown away. Each
cooldown is handed to `on_cooldown` (the app keeps it in Redis) and `restore` takes back those still
running, so a restart does not forget them and let every such caller in at once.
While the process drains before a restart, new work is refused. Every refusal says when to come
back (Retry-After), so well-behaved clients spread their retries instead of piling up.
A limit of 0 (or a deadline of 0) turns that mechanism off.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TypeVar

from services.api.deadline import DeadlineExceeded, request_deadline
from services.api.errors import ApiError
from services.common.config import Settings

T = TypeVar("T")

RETRY_AFTER_DRAINING = 2  # seconds: about as long as a restart takes


@dataclass
class _RouteGate:
    slots: asyncio.Semaphore | None
    by_caller: Counter[str] = field(default_factory=Counter)


class Admission:
    def __init__(
        self,
        route_limit: int = 0,
        caller_limit: int = 0,
        queue_timeout_s: float = 0.0,
        deadline_s: float = 0.0,
        deadline_cooldown_s: float = 0.0,
    ) -> None:
        self._route_limit = route_limit
        self._caller_limit = caller_limit
        self._queue_timeout_s = queue_timeout_s
        self._deadline_s = deadline_s
        self._deadline_cooldown_s = deadline_cooldown_s
        self._cooling: dict[tuple[str, str], float] = {}  # (route, caller) -> refused until (monotonic)
        self.on_cooldown: Callable[[str, str, float], None] | None = None
        self._jitter = random.Random()
        self._gates: dict[str, _RouteGate] = {}
        self.in_flight = 0
        self.draining = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Admission:
        return cls(
            route_limit=settings.api_route_concurrency,
            caller_limit=settings.api_caller_concurrency,
            queue_timeout_s=settings.api_queue_timeout_s,
            deadline_s=settings.api_request_deadline_s,
            deadline_cooldown_s=settings.api_deadline_cooldown_s,
        )

    async def run(self, route: str, caller: str, work: Callable[[], Awaitable[T]]) -> T:
        """Do `work` for `caller` on `route` if admitted; otherwise raise a 429/503 ApiError."""
        if self.draining:
            raise _refusal(503, "draining", "the api is restarting; come back shortly", RETRY_AFTER_DRAINING)
        gate = self._gates.get(route)
        if gate is None:
            slots = asyncio.Semaphore(self._route_limit) if self._route_limit > 0 else None
            gate = self._gates[route] = _RouteGate(slots)
        read = route.startswith("['GET']")
        self._refuse_while_cooling(route, caller)
        # Only reads (polls) are limited per caller: one integration may send many messages at once.
        if self._caller_limit > 0 and read and gate.by_caller[caller] >= self._caller_limit:
            raise _refusal(
                429, "too_many_requests", f"{caller} already has {self._caller_limit} requests here", 1
            )
        gate.by_caller[caller] += 1
        self.in_flight += 1
        try:
            if gate.slots is None:
                return await self._within_deadline(work, read, (route, caller))
            try:
                await asyncio.wait_for(gate.slots.acquire(), self._queue_timeout_s)
            except TimeoutError:
                raise _refusal(
                    503, "overloaded", f"{route} is at its limit of {self._route_limit} requests", 1
                ) from None
            try:
                return await self._within_deadline(work, read, (route, caller))
            finally:
                gate.slots.release()
        finally:
            self.in_flight -= 1
            gate.by_caller[caller] -= 1
            if gate.by_caller[caller] <= 0:
                del gate.by_caller[caller]

    def restore(self, cooldowns: dict[tuple[str, str], float]) -> None:
        """Hold callers to cooldowns begun before this process started: (route, caller) -> seconds left."""
        now = time.monotonic()
        for route_caller, left in cooldowns.items():
            self._cooling[route_caller] = max(self._cooling.get(route_caller, 0.0), now + left)

    def _refuse_while_cooling(self, route: str, caller: str) -> None:
        until = self._cooling.get((route, caller))
        if until is None:
            return
        left = until - time.monotonic()
        if left <= 0:
            del self._cooling[(route, caller)]
            return
        detail = f"{caller}'s last read here ran out of time; come back later"
        raise _refusal(429, "cooling_down", detail, math.ceil(left))

    async def _within_deadline(
        self, work: Callable[[], Awaitable[T]], read: bool, route_caller: tuple[str, str]
    ) -> T:
        if self._deadline_s <= 0:
            return await work()
        # A read's round trips stop at the deadline too (cancelling alone may not stop them); a write
        # is never cut between its round trips, which could store a message and not publish it.
        try:
            with request_deadline(self._deadline_s) if read else nullcontext():
                return await asyncio.wait_for(work(), self._deadline_s)
        except (TimeoutError, DeadlineExceeded):
            come_back = 1
            if read and self._deadline_cooldown_s > 0:
                cooldown = self._deadline_cooldown_s * self._jitter.uniform(0.5, 1.0)
                self._cooling[route_caller] = time.monotonic() + cooldown
                if self.on_cooldown is not None:
                    self.on_cooldown(*route_caller, cooldown)
                come_back = math.ceil(cooldown)
            raise _refusal(
                503, "deadline_exceeded", f"the request took longer than {self._deadline_s:g} s", come_back
            ) from None


def _refusal(status: int, code: str, detail: str, retry_after_s: int) -> ApiError:
    return ApiError(status, code, detail, headers={"Retry-After": str(retry_after_s)})
