"""The benches' lean HTTP/1.1 client keeps one connection, reopens it when told, and never guesses."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from http11 import Connection, HttpError


@asynccontextmanager
async def http_server(reply: Callable[[int], bytes]) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A real server on 127.0.0.1: answers each request with reply(n) (n counts requests from 0);
    yields its URL and the list of request heads it read, one connection's requests per entry."""
    connections: list[bytes] = []
    served = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        connections.append(b"")
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:  # the client hung up
                break
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if b"Length" in line)
            await reader.readexactly(length)
            connections[-1] += head
            writer.write(reply(served))
            served += 1
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", connections
    finally:
        server.close()


def answer(status: int, body: bytes = b"{}", extra: str = "") -> bytes:
    return f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


@pytest.mark.asyncio
async def test_requests_share_one_kept_alive_connection_and_carry_the_fixed_headers():
    async with http_server(lambda n: answer(202, b'{"n": %d}' % n)) as (url, connections):
        client = Connection(url, {"Authorization": "Bearer t"})
        assert await client.post_json("/a", {"x": 1}) == (202, b'{"n": 0}')
        assert await client.post_json("/b", {"x": 2}) == (202, b'{"n": 1}')
        await client.close()
    assert len(connections) == 1
    assert connections[0].count(b"Authorization: Bearer t") == 2
    assert b"POST /b HTTP/1.1" in connections[0]


@pytest.mark.asyncio
async def test_a_reply_saying_connection_close_makes_the_next_request_open_a_new_one():
    async with http_server(lambda n: answer(503, extra="Connection: close\r\n")) as (url, connections):
        client = Connection(url, {})
        assert (await client.post_json("/a", {}))[0] == 503
        assert (await client.post_json("/a", {}))[0] == 503
        await client.close()
    assert len(connections) == 2


@pytest.mark.asyncio
async def test_a_chunked_reply_is_an_error_and_its_connection_is_never_reused():
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    async with http_server(lambda n: chunked if n == 0 else answer(202)) as (url, connections):
        client = Connection(url, {})
        with pytest.raises(HttpError, match="without Content-Length"):
            await client.post_json("/a", {})
        assert (await client.post_json("/a", {}))[0] == 202
        await client.close()
    assert len(connections) == 2


def test_only_plain_http_urls_are_accepted():
    with pytest.raises(ValueError, match="http://"):
        Connection("https://example.test", {})
