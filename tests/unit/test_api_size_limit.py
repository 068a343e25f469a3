"""Bodies over settings.max_body_bytes are refused with 413, whether declared or streamed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.common.config import Settings
from services.common.tokens import agent_token
from tests.unit.refusing_redis import RefusingRedis

LIMIT = 1000
SETTINGS = Settings(token_secret="the-secret", max_body_bytes=LIMIT)
ALICE = {"Authorization": f"Bearer {agent_token('alice', SETTINGS.token_secret)}"}
JSON = {**ALICE, "Content-Type": "application/json"}


@pytest.fixture
def app() -> FastAPI:
    return create_app(SETTINGS, redis_client=RefusingRedis())


def message_of(size: int) -> bytes:
    """A well-formed message body of exactly `size` bytes."""
    envelope = len(json.dumps({"body": ""}))
    return json.dumps({"body": "x" * (size - envelope)}).encode()


def test_the_default_limit_is_64_kib() -> None:
    assert Settings().max_body_bytes == 64 * 1024


def test_a_declared_length_over_the_limit_is_a_413(app: FastAPI) -> None:
    response = TestClient(app).post("/tickets/1/messages", content=message_of(LIMIT + 1), headers=JSON)
    assert response.status_code == 413
    body = response.json()
    assert body["error"] == "body_too_large"
    assert str(LIMIT) in body["detail"]


def test_a_streamed_body_over_the_limit_is_a_413_without_content_length(app: FastAPI) -> None:
    def chunks() -> Any:
        yield message_of(LIMIT + 1)

    response = TestClient(app).post("/tickets/1/messages", content=chunks(), headers=JSON)
    assert response.request.headers.get("content-length") is None
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


def test_a_body_at_the_limit_is_not_refused_for_its_size(app: FastAPI) -> None:
    # Exactly at the limit it passes the size check and is judged on its content instead.
    response = TestClient(app).post("/tickets/1/messages", content=b"{" * LIMIT, headers=JSON)
    assert response.status_code == 400


def test_small_chunks_adding_up_past_the_limit_are_a_413(app: FastAPI) -> None:
    # Drive the app the way a server would: several body chunks, none over the limit alone.
    body = message_of(3 * LIMIT)
    pieces = [body[i : i + LIMIT // 2] for i in range(0, len(body), LIMIT // 2)]
    status, answer = asyncio.run(_post_in_chunks(app, "/tickets/1/messages", pieces))
    assert status == 413
    assert answer["error"] == "body_too_large"


async def _post_in_chunks(app: FastAPI, path: str, pieces: list[bytes]) -> tuple[int, dict[str, Any]]:
    headers = [(name.lower().encode(), value.encode()) for name, value in JSON.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    incoming = [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ]
    outgoing: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        outgoing.append(message)

    await app(scope, receive, send)
    start = next(m for m in outgoing if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in outgoing if m["type"] == "http.response.body")
    return start["status"], json.loads(body)
