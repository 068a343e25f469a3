"""The reference live client: what a helpdesk tab does, and what the harness runs (by the thousand) as
simulated agents.

It connects with a token and a protocol version, applies the snapshot, records every update through
``on_update(channel, seq, data, received_at)``, answers pings, resumes from its last sequences after a
disconnect, and reconnects as its ``ReconnectPolicy`` says. ``banner`` is what the agent would see.
``sleep()`` stops reading the socket without closing it, like a laptop lid shut; ``wake()`` opens it.

A client costs one task and one socket; nothing is kept per update beyond counters, so thousands fit in
one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from services.live import protocol
from services.live.protocol import Advice, MalformedFrame, advice_for_close
from services.live.reconnect import FullJitterBackoff, ReconnectPolicy
from services.live.sequence import Cursor, Order

log = logging.getLogger("live.client")

UpdateCallback = Callable[[str, int, dict[str, Any], float], None]
EventCallback = Callable[[str, dict[str, Any]], None]

DROPPED = 1006  # the code recorded when the connection ended without a close frame


class Banner(StrEnum):
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"  # disconnected for less than `not_connected_after_s` (no banner yet)
    NOT_CONNECTED = "not_connected"  # the red "Not connected to live updates" banner
    STALE_RELOAD = "stale_reload"  # "stale live notifications connection, reload" (closed 4002)
    UNAUTHORIZED = "unauthorized"  # closed 4001
    TOO_MANY_TABS = "too_many_tabs"  # "live updates paused: close your other tabs" (closed 4008)


@dataclass
class ClientStats:
    attempts: int = 0  # connection attempts
    handshakes: int = 0  # attempts that opened a websocket
    snapshots: int = 0
    resets: int = 0  # snapshots marked reset: a resume the server could not honour
    resumes: int = 0  # sessions resumed with a replay
    updates: int = 0  # updates applied (passed to on_update)
    duplicates: int = 0  # updates dropped because they were already applied
    gaps: int = 0  # updates that arrived after a hole in the sequence
    missed: int = 0  # updates a snapshot skipped over: never seen by this client
    pings: int = 0
    silences: int = 0  # connections abandoned because the server went quiet
    close_codes: Counter[int] = field(default_factory=Counter)


class LiveClient:
    def __init__(
        self,
        url: str,
        token: str,
        version: int = 1,
        *,
        versions: Iterable[int] | None = None,
        policy: ReconnectPolicy | None = None,
        resume: bool = True,
        on_update: UpdateCallback | None = None,
        on_event: EventCallback | None = None,
        name: str = "",
        silence_timeout_s: float = 30.0,
        not_connected_after_s: float = 20.0,
        open_timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self.token = token
        self.version = version
        # Every version this build speaks, offered for negotiation (None: only `version`).
        self.versions = frozenset(versions) if versions is not None else None
        self.negotiated_version: int | None = None  # what the server said in the last snapshot/resume
        self.policy: ReconnectPolicy = policy or FullJitterBackoff()
        self.resume = resume
        self.name = name
        self.stats = ClientStats()
        self.last_error: dict[str, Any] | None = None  # the last {"type": "error"} frame from the server
        self._on_update = on_update
        self._on_event = on_event
        self._silence_timeout_s = silence_timeout_s
        self._not_connected_after_s = not_connected_after_s
        self._open_timeout_s = open_timeout_s
        self._cursor = Cursor()
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._terminal: Banner | None = None
        self._connected = asyncio.Event()
        self._disconnected_since = time.monotonic()
        self._asleep = False
        self._awake = asyncio.Event()
        self._awake.set()

    # --- public surface -------------------------------------------------------------------------

    @property
    def banner(self) -> Banner:
        if self._terminal is not None:
            return self._terminal
        if self._connected.is_set():
            return Banner.CONNECTED
        if time.monotonic() - self._disconnected_since > self._not_connected_after_s:
            return Banner.NOT_CONNECTED
        return Banner.RECONNECTING

    @property
    def last_seq(self) -> dict[str, int]:
        return dict(self._cursor.last)

    @property
    def asleep(self) -> bool:
        return self._asleep

    @property
    def connection(self) -> ClientConnection | None:
        """The open websocket, if any (for inspecting its socket; do not read from it)."""
        return self._ws

    @property
    def finished(self) -> bool:
        """The client gave up for good (stale or unauthorized) or was stopped."""
        return self._task is not None and self._task.done()

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._disconnected_since = time.monotonic()
            self._task = asyncio.create_task(self.run(), name=f"live-client {self.name}")
        return self._task

    async def wait_connected(self, timeout: float) -> bool:
        """True once a snapshot or resume arrived; False after ``timeout`` or when the client gave up."""
        waiter = asyncio.ensure_future(self._connected.wait())
        watched = {waiter} | ({self._task} if self._task else set())
        try:
            await asyncio.wait(watched, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        return self._connected.is_set()

    async def stop(self) -> None:
        """Close the connection (1000) and end the client."""
        self._stopping = True
        self.wake()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), timeout=3)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def sleep(self) -> None:
        """Stop reading the socket and stop answering, without closing it: a laptop going to sleep."""
        self._asleep = True
        self._awake.clear()
        if self._ws is not None:
            self._ws.transport.pause_reading()

    def wake(self) -> None:
        if not self._asleep:
            return
        self._asleep = False
        self._awake.set()
        if self._ws is not None and not _library_paused(self._ws):
            self._ws.transport.resume_reading()

    # --- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve the session, and reconnect until stopped or told not to."""
        while not self._stopping:
            await self._awake.wait()
            positions = self._cursor.resume_positions() if self.resume else None
            url = protocol.live_url(self.url, self.token, self.version, positions, self.versions)
            self.stats.attempts += 1
            try:
                ws = await connect(
                    url,
                    open_timeout=self._open_timeout_s,
                    ping_interval=None,  # liveness comes from the server's pings; a sleeping tab is silent
                    close_timeout=2,
                    compression=None,
                    proxy=None,
                    max_size=4 * 1024 * 1024,  # a snapshot may be large
                )
            except (OSError, TimeoutError, WebSocketException) as exc:
                self._emit("connect_failed", {"error": f"{type(exc).__name__}: {exc}"})
                await self._pause(self.policy.next_delay())
                continue
            self.stats.handshakes += 1
            self.policy.on_handshake()
            code = await self._session(ws)
            self.stats.close_codes[code] += 1
            self._emit("closed", {"code": code})
            if self._stopping:
                break
            advice = advice_for_close(code)
            if advice is Advice.RELOAD:
                self._terminal = Banner.STALE_RELOAD
                break
            if advice is Advice.STOP_UNAUTHORIZED:
                self._terminal = Banner.UNAUTHORIZED
                break
            if advice is Advice.TOO_MANY_TABS:
                self._terminal = Banner.TOO_MANY_TABS
                break
            await self._pause(self.policy.next_delay())

    async def _session(self, ws: ClientConnection) -> int:
        self._ws = ws
        if self._asleep:
            ws.transport.pause_reading()
        try:
            while True:
                await self._awake.wait()
                try:
                    async with asyncio.timeout(self._silence_timeout_s):
                        frame = await ws.recv()
                except TimeoutError:
                    if self._asleep:
                        continue  # a sleeping laptop notices nothing
                    self.stats.silences += 1
                    self._emit("silence", {"seconds": self._silence_timeout_s})
                    ws.transport.abort()
                    return DROPPED
                await self._awake.wait()  # it arrived just before the lid shut: handle it on wake
                await self._handle(ws, frame)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else DROPPED
        finally:
            self._ws = None
            if self._connected.is_set():
                self._connected.clear()
                self._disconnected_since = time.monotonic()

    async def _handle(self, ws: ClientConnection, frame: str | bytes) -> None:
        try:
            message = protocol.parse_server_message(frame)
        except MalformedFrame as exc:
            self._emit("bad_frame", {"error": str(exc)})
            return
        kind = message["type"]
        if kind == "update":
            self._apply_update(message)
        elif kind == "ping":
            self.stats.pings += 1
            await ws.send(protocol.PONG)
        elif kind == "snapshot":
            self._apply_snapshot(message)
        elif kind == "resumed":
            self.stats.resumes += 1
            self.negotiated_version = message.get("version", self.negotiated_version)
            self._mark_connected()
            self._emit("resumed", {"channels": message.get("channels", {})})
        elif kind == "error":
            self.last_error = message
            self._emit("server_error", message)
        # Other types (acks, frames of newer protocol versions) carry nothing this client needs.

    def _apply_snapshot(self, message: dict[str, Any]) -> None:
        channels = message.get("channels", {})
        positions = {c: int(state.get("seq", 0)) for c, state in channels.items()}
        missed = self._cursor.restart_from(positions)
        self.negotiated_version = message.get("version", self.negotiated_version)
        self.stats.snapshots += 1
        self.stats.missed += sum(missed.values())
        if message.get("reset"):
            self.stats.resets += 1
        self._mark_connected()
        self._emit("snapshot", {"reset": bool(message.get("reset")), "missed": missed, "channels": channels})

    def _apply_update(self, message: dict[str, Any]) -> None:
        channel, seq = message.get("channel"), message.get("seq")
        if not isinstance(channel, str) or not isinstance(seq, int):
            self._emit("bad_frame", {"error": "update without channel or seq"})
            return
        expected = self._cursor.last.get(channel, 0) + 1
        order = self._cursor.observe(channel, seq)
        if order is Order.DUPLICATE:
            self.stats.duplicates += 1
            return
        if order is Order.GAP:
            self.stats.gaps += 1
            self._emit("gap", {"channel": channel, "expected": expected, "got": seq})
        self.stats.updates += 1
        if self._on_update is not None:
            try:
                self._on_update(channel, seq, message.get("data") or {}, time.time())
            except Exception:  # a broken callback must not take the client down
                log.exception("on_update of %s failed", self.name)

    def _mark_connected(self) -> None:
        self.policy.on_stable()
        self._connected.set()

    async def _pause(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self._awake.wait()  # a sleeping laptop does not retry

    def _emit(self, kind: str, info: dict[str, Any]) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(kind, info)
        except Exception:
            log.exception("on_event of %s failed", self.name)


def _library_paused(ws: ClientConnection) -> bool:
    """Whether websockets itself paused reading (its incoming queue is full); it resumes it itself."""
    messages = getattr(ws, "recv_messages", None)
    return bool(getattr(messages, "paused", False))
