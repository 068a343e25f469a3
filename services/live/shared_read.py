"""One Redis read shared by every handshake waiting for it: a reconnect storm of thousands of tabs
costs a handful of snapshot reads instead of one each, so the server's bounded Redis pool is never
exhausted (issue: at 3,000+ tabs each handshake queued for a pooled connection and timed out).

A caller joins the next read to start, never one already running: a session registers with the
fan-out before it asks, so the state it gets was read after that and no update falls between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedRead(Generic[T]):
    def __init__(self, read: Callable[[], Awaitable[T]]) -> None:
        self._read = read
        self._next: asyncio.Future[T] | None = None  # the read callers are joining; not started yet
        self.reads = 0  # reads made (for tests and metrics)

    async def get(self) -> T:
        if self._next is None:
            loop = asyncio.get_running_loop()
            self._next = loop.create_future()
            loop.call_soon(self._start)
        return await asyncio.shield(self._next)

    def _start(self) -> None:
        waiting, self._next = self._next, None
        assert waiting is not None
        self.reads += 1
        task = asyncio.ensure_future(self._read())
        task.add_done_callback(lambda done: _settle(waiting, done))


def _settle(waiting: asyncio.Future[T], done: asyncio.Future[T]) -> None:
    if waiting.cancelled():
        return
    if done.cancelled():
        waiting.cancel()
    elif done.exception() is not None:
        waiting.set_exception(done.exception())  # type: ignore[arg-type]
    else:
        waiting.set_result(done.result())
