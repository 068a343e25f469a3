"""One connected live client: its subscription, its bounded send buffer and, while frames wait, its writer.

Most tabs are idle most of the time, and a server holds thousands of them: an idle session holds no
queue and no task (an `asyncio.Queue` and a task parked on it cost 4.4 KiB a session, measured with
tracemalloc). A frame offered to a session whose socket has taken everything so far is written at
once; otherwise it waits in a bounded queue and a writer task sends what waits, then ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from websockets.asyncio.server import ServerConnection, broadcast
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
        self._queue_size = max(1, queue_size)
        self._waiting: deque[Frame] | None = None  # frames not yet handed to the socket; None when empty
        self._metrics = metrics
        self._writer: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None

    def offer(self, frame: Frame) -> None:
        """Send or queue a frame without waiting; a client too slow to drain its queue is closed 1008."""
        if self.closing:
            return
        if self._socket_is_free():
            channel, seq, text = frame
            if channel is None or self._wants(channel, seq):
                broadcast((self.ws,), text)
                if channel is not None:
                    self._metrics.updates_sent.inc()
            return
        if self._waiting is None:
            self._waiting = deque()
        elif len(self._waiting) >= self._queue_size:
            self._metrics.queue_overflows.inc()
            log.info("send queue of %s overflowed; closing 1008", self.agent)
            self.close_soon(CloseCode.POLICY_VIOLATION, "send queue overflow")
            return
        self._waiting.append(frame)
        self._wake_writer()

    def start(self, floor: dict[str, int]) -> None:
        """The client holds state up to ``floor``; begin sending what the fan-out queued after it."""
        self._floor = floor
        self.started = True
        self._wake_writer()

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

    def _socket_is_free(self) -> bool:
        """Nothing waits and the socket took every byte so far: a frame can go out now, in order,
        without a task (the fan-out's path for an idle tab)."""
        if not self.started or self._writer is not None or self._waiting:
            return False
        transport = self.ws.transport
        return not transport.is_closing() and transport.get_write_buffer_size() == 0

    def _wake_writer(self) -> None:
        if self.started and self._writer is None and self._waiting:
            self._writer = asyncio.create_task(self._write())

    def _wants(self, channel: str, seq: int) -> bool:
        return channel in self.channels and seq > self._floor.get(channel, 0)

    async def _write(self) -> None:
        """Send what waits, in order, then end: the next offer starts a new writer."""
        waiting = self._waiting
        try:
            while waiting:
                channel, seq, text = waiting[0]
                if channel is not None and not self._wants(channel, seq):
                    waiting.popleft()
                    continue
                await self.ws.send(text)
                waiting.popleft()  # counted as waiting until the socket took it, as a queue's slot would be
                if channel is not None:
                    self._metrics.updates_sent.inc()
        except ConnectionClosed:
            self.closing = True  # the reader sees the close too and ends the session; offer nothing more
        finally:
            self._writer = None
            if not waiting:  # offers append to this same deque while the writer runs
                self._waiting = None
