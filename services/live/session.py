"""One connected live client: its subscription, its bounded send queue and the task that drains it."""

from __future__ import annotations

import asyncio
import logging

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from services.common.live_feed import CHANNELS
from services.live.metrics import LiveMetrics
from services.live.protocol import CloseCode

log = logging.getLogger("live.session")

# (channel, seq, text): the fan-out builds one tuple per update and offers the same object to every
# session. Non-update frames (pings, acks) have no channel.
Frame = tuple[str | None, int, str]


class Session:
    def __init__(
        self, ws: ServerConnection, agent: str, queue_size: int, metrics: LiveMetrics, now: float
    ) -> None:
        self.ws = ws
        self.agent = agent
        self.channels: frozenset[str] = frozenset(CHANNELS)
        self.last_seen = now  # loop time of the last frame from the client
        self.next_ping = now
        self.closing = False
        self.started = False  # the snapshot or replay went out; live frames may follow
        self._floor: dict[str, int] = {}  # updates at or below these were in the snapshot or replay
        self._queue: asyncio.Queue[Frame] = asyncio.Queue(maxsize=max(1, queue_size))
        self._metrics = metrics
        self._writer: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None

    def offer(self, frame: Frame) -> None:
        """Queue a frame without waiting; a client too slow to drain its queue is closed 1008."""
        if self.closing:
            return
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self._metrics.queue_overflows.inc()
            log.info("send queue of %s overflowed; closing 1008", self.agent)
            self.close_soon(CloseCode.POLICY_VIOLATION, "send queue overflow")

    def start(self, floor: dict[str, int]) -> None:
        """The client holds state up to ``floor``; begin sending what the fan-out queued after it."""
        self._floor = floor
        self.started = True
        self._writer = asyncio.create_task(self._write())

    def close_soon(self, code: int, reason: str) -> None:
        """Close from code that cannot wait (the fan-out, the heartbeat loop)."""
        if self.closing:
            return
        self.closing = True
        self._close_task = asyncio.create_task(self.ws.close(code, reason))

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        if self._close_task is not None:
            await asyncio.gather(self._close_task, return_exceptions=True)

    async def _write(self) -> None:
        try:
            while True:
                channel, seq, text = await self._queue.get()
                if channel is not None:
                    if channel not in self.channels or seq <= self._floor.get(channel, 0):
                        continue
                    await self.ws.send(text)
                    self._metrics.updates_sent.inc()
                else:
                    await self.ws.send(text)
        except ConnectionClosed:
            pass
