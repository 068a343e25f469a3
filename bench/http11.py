"""A lean HTTP/1.1 client for the benches' load: one kept-alive connection, JSON in, status out.

On this 2-core machine the pipeline bench's httpx client took 2 ms of CPU a request, more than
the api spent answering it (1.3 ms), so the figure measured the load generator. This client
writes the request itself and reads back the status line, the headers and a Content-Length body:
all the api ever sends. Anything else (a chunked body, a reply cut short) is an error, never a guess.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit


class HttpError(RuntimeError):
    """The server answered something this client does not read, or hung up mid-reply."""


class Connection:
    """One kept-alive connection to `base_url` (http only), reopened when the server closes it."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"{base_url!r}: an http:// URL with a host")
        self._host, self._port = parts.hostname, parts.port or 80
        self._fixed = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._timeout = timeout
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post_json(self, path: str, body: Any) -> tuple[int, bytes]:
        """POST `body` as JSON; the status code and the reply's body."""
        payload = json.dumps(body, separators=(",", ":")).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n{self._fixed}"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        return await asyncio.wait_for(self._exchange(head.encode() + payload), self._timeout)

    async def close(self) -> None:
        if self._streams is not None:
            _, writer = self._streams
            self._streams = None
            writer.close()
            await asyncio.gather(writer.wait_closed(), return_exceptions=True)

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._streams
        try:
            writer.write(request)
            status_line = await reader.readline()
            parts = status_line.split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
                raise HttpError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
            headers = await _headers(reader)
            if "content-length" not in headers:
                raise HttpError(f"a reply without Content-Length: {sorted(headers)}")
            body = await reader.readexactly(int(headers["content-length"]))
        except asyncio.IncompleteReadError as exc:
            await self.close()
            raise HttpError(f"the server hung up {len(exc.partial)} bytes into a reply") from exc
        except BaseException:
            await self.close()  # the connection's state is unknown: never reuse it
            raise
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return int(parts[1]), body


async def _headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if not line:
            raise HttpError("the server closed the connection inside the headers")
        if line in (b"\r\n", b"\n"):
            return headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
