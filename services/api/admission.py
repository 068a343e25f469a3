"""Admission control on the request path: what the api agrees to work on, and for how long.

Per route, at most `route_limit` requests are worked on at once and one caller holds at most
`caller_limit` of a read route's; a request that cannot get a slot within `queue_timeout_s` is refused
(stale work is dropped, not done late), and work on an admitted request stops at its deadline.
While the process drains before a restart, new work is refused. Every refusal says when to come
back (Retry-After), so well-behaved clients spread their retries instead of piling up.
A limit of 0 (or a deadline of 0) turns that mechanism off.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

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
    ) -> None:
        self._route_limit = route_limit
        self._caller_limit = caller_limit
        self._queue_timeout_s = queue_timeout_s
        self._deadline_s = deadline_s
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
        )

    async def run(self, route: str, caller: str, work: Callable[[], Awaitable[T]]) -> T:
        """Do `work` for `caller` on `route` if admitted; otherwise raise a 429/503 ApiError."""
        if self.draining:
            raise _refusal(503, "draining", "the api is restarting; come back shortly", RETRY_AFTER_DRAINING)
        gate = self._gates.get(route)
        if gate is None:
            slots = asyncio.Semaphore(self._route_limit) if self._route_limit > 0 else None
            gate = self._gates[route] = _RouteGate(slots)
        # Only reads (polls) are limited per caller: one integration may send many messages at once.
        if (
            self._caller_limit > 0
            and route.startswith("['GET']")
            and gate.by_caller[caller] >= self._caller_limit
        ):
            raise _refusal(
                429, "too_many_requests", f"{caller} already has {self._caller_limit} requests here", 1
            )
        gate.by_caller[caller] += 1
        self.in_flight += 1
        try:
            if gate.slots is None:
                return await self._within_deadline(work)
            try:
                await asyncio.wait_for(gate.slots.acquire(), self._queue_timeout_s)
            except TimeoutError:
                raise _refusal(
                    503, "overloaded", f"{route} is at its limit of {self._route_limit} requests", 1
                ) from None
            try:
                return await self._within_deadline(work)
            finally:
                gate.slots.release()
        finally:
            self.in_flight -= 1
            gate.by_caller[caller] -= 1
            if gate.by_caller[caller] <= 0:
                del gate.by_caller[caller]

    async def _within_deadline(self, work: Callable[[], Awaitable[T]]) -> T:
        if self._deadline_s <= 0:
            return await work()
        try:
            return await asyncio.wait_for(work(), self._deadline_s)
        except TimeoutError:
            raise _refusal(
                503, "deadline_exceeded", f"the request took longer than {self._deadline_s:g} s", 1
            ) from None


def _refusal(status: int, code: str, detail: str, retry_after_s: int) -> ApiError:
    return ApiError(status, code, detail, headers={"Retry-After": str(retry_after_s)})
