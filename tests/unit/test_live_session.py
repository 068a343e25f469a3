"""A live session sends what it is offered, in order and past its floor; an idle one holds no writer; a client
that stops reading is closed 1008 once its send queue is full. Real websockets connections on localhost."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from collections.abc import AsyncIterator

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from harness.engine.waiting import wait_until
from services.live.metrics import LiveMetrics
from services.live.protocol import CloseCode
from services.live.session import Frame, Session


@contextlib.asynccontextmanager
async def serving_sessions(queue_size: int) -> AsyncIterator[tuple[int, asyncio.Future[Session]]]:
    """A websocket server on a free local port; the future gets the Session of its first connection."""
    made: asyncio.Future[Session] = asyncio.get_running_loop().create_future()
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        session = Session(ws, "agent-1", queue_size, LiveMetrics(), 0.0)
        made.set_result(session)
        with contextlib.suppress(ConnectionClosed):
            await ws.wait_closed()
        await done.wait()
        await session.stop()

    async with serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
        try:
            yield server.sockets[0].getsockname()[1], made
        finally:
            done.set()


@contextlib.asynccontextmanager
async def session_pair(queue_size: int) -> AsyncIterator[tuple[Session, ClientConnection]]:
    """A server-side Session and the websockets client connected to it."""
    async with (
        serving_sessions(queue_size) as (port, made),
        connect(f"ws://127.0.0.1:{port}", ping_interval=None) as client,
    ):
        yield await asyncio.wait_for(made, 5), client


@contextlib.asynccontextmanager
async def session_with_a_client_that_never_reads(queue_size: int) -> AsyncIterator[Session]:
    """A server-side Session whose client completed the handshake and then stopped reading: a frozen tab."""
    async with serving_sessions(queue_size) as (port, made):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await reader.readuntil(b"\r\n\r\n")
        writer.transport.pause_reading()  # from here on the socket's buffers fill up
        try:
            yield await asyncio.wait_for(made, 5)
        finally:
            writer.close()


def update(seq: int, channel: str = "views") -> Frame:
    return (channel, seq, f'{{"seq": {seq}}}')


def test_frames_offered_before_start_go_out_after_it_past_the_floor_and_in_order():
    async def scenario() -> list[str]:
        async with session_pair(queue_size=100) as (session, client):
            for seq in range(1, 6):
                session.offer(update(seq))
            session.offer((None, 0, "ping"))
            session.start({"views": 3})  # the snapshot carried updates 1 to 3
            return [await asyncio.wait_for(client.recv(), 5) for _ in range(3)]

    assert asyncio.run(scenario()) == ['{"seq": 4}', '{"seq": 5}', "ping"]


def test_an_idle_session_holds_no_writer_and_no_queue_and_sends_an_offer_at_once():
    async def scenario() -> tuple[bool, bool, str]:
        async with session_pair(queue_size=100) as (session, client):
            session.start({})
            session.offer(update(1))
            no_writer, no_queue = session._writer is None, session._waiting is None
            return no_writer, no_queue, await asyncio.wait_for(client.recv(), 5)

    no_writer, no_queue, received = asyncio.run(scenario())
    assert no_writer and no_queue, "the frame went to the socket without a task or a queue"
    assert received == '{"seq": 1}'


def test_a_client_that_stops_reading_is_closed_1008_when_its_queue_is_full():
    async def scenario() -> tuple[int | None, int, float]:
        # The client reads nothing past one message, so the socket's buffers fill and frames pile up.
        async with session_with_a_client_that_never_reads(queue_size=8) as session:
            session.start({})
            big = "x" * 60_000
            seq = 0
            while not session.closing and seq < 2_000:
                seq += 1
                session.offer(("views", seq, big))
                await asyncio.sleep(0)
            await wait_until(
                lambda: session.ws.protocol.close_sent is not None, timeout=5, what="the close frame"
            )
            close = session.ws.protocol.close_sent
            overflows = session._metrics.queue_overflows._value.get()
            return (close.code if close else None), seq, overflows

    code, offered, overflows = asyncio.run(scenario())
    assert code == CloseCode.POLICY_VIOLATION
    assert overflows == 1
    assert offered < 2_000, "the session closed before every frame was offered"


def test_a_reading_client_is_never_closed_however_many_frames_it_gets():
    async def scenario() -> tuple[bool, list[str], bool]:
        async with session_pair(queue_size=8) as (session, client):
            session.start({})
            received: list[str] = []
            for seq in range(1, 501):
                session.offer(update(seq, channel="views" if seq % 3 else "typing"))
                if seq % 4 == 0:  # a client keeping up: it reads as the server writes
                    while len(received) < seq:
                        received.append(await asyncio.wait_for(client.recv(), 5))
            await wait_until(lambda: session._writer is None, timeout=5, what="the writer ends")
            return session.closing, received, session._waiting is None

    closing, received, drained = asyncio.run(scenario())
    assert not closing
    assert received == [f'{{"seq": {seq}}}' for seq in range(1, 501)], "every frame, in the order offered"
    assert drained
