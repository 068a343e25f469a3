"""The live server's contract, checked against the running stack.

A stale client is told to reload (4002) instead of being invited straight back; a client sending garbage
is closed (4003) without disturbing anybody else's ordered stream; a client that drops and resumes gets
exactly the updates it missed, in order.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from faults.failpoints import Failpoint
from services.common import live_feed
from services.live import protocol
from services.live.protocol import CloseCode

pytestmark = [pytest.mark.stack, pytest.mark.asyncio]

CHANNEL = "typing"
UNKNOWN_VERSION = 99
TIMEOUT_S = 10
FAILPOINT_REFRESH_S = 2.0  # services read the failpoints once a second


def _server_version(stack: Any) -> int:
    import httpx

    health_url = stack.live_url.replace("ws://", "http://", 1).rstrip("/") + "/health"
    return int(httpx.get(health_url, timeout=5).json()["protocol"])


async def _open(
    stack: Any, agent: str, version: int, resume: dict[str, int] | None = None
) -> ClientConnection:
    url = protocol.live_url(stack.live_url, stack.agent_token(agent), version, resume)
    return await connect(url, proxy=None, open_timeout=TIMEOUT_S)


async def _next(ws: ClientConnection) -> dict[str, Any]:
    """The next frame that is not a ping (pings are answered, as a real client would)."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
        if message["type"] == "ping":
            await ws.send(protocol.PONG)
            continue
        return message


async def _close_code(ws: ClientConnection) -> int | None:
    """Read until the server closes; returns its close code."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT_S)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


async def _updates_until(ws: ClientConnection, markers: list[str]) -> list[dict[str, Any]]:
    """Every CHANNEL update up to and including the last marker (other publishers may interleave)."""
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["data"].get("marker") != markers[-1]:
        message = await _next(ws)
        if message["type"] == "update" and message["channel"] == CHANNEL:
            seen.append(message)
    return seen


def _publish(store: redis.Redis, markers: list[str]) -> None:
    for marker in markers:
        live_feed.publish(store, CHANNEL, {"ticket": 1, "agent": "contract-test", "marker": marker})


def _markers(n: int) -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [f"{run}-{i}" for i in range(n)]


def _assert_in_order_without_gaps(updates: list[dict[str, Any]], after: int, markers: list[str]) -> None:
    assert [u["seq"] for u in updates] == list(range(after + 1, after + 1 + len(updates)))
    ours = [u["data"]["marker"] for u in updates if u["data"].get("marker") in markers]
    assert ours == markers


@pytest.fixture
def store(outage_stack: Any) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(outage_stack.redis_url, decode_responses=True)
    yield client
    client.close()


async def test_an_unknown_protocol_version_is_told_to_reload_not_to_reconnect(outage_stack):
    ws = await _open(outage_stack, "contract-stale", UNKNOWN_VERSION)
    message = await _next(ws)
    assert message == {
        "type": "error",
        "reason": "unsupported_version",
        "server_version": _server_version(outage_stack),
    }
    assert await _close_code(ws) == CloseCode.UNSUPPORTED_VERSION


async def test_a_tab_from_before_the_upgrade_is_stale_too(outage_stack):
    other_version = next(v for v in protocol.PROTOCOL_VERSIONS if v != _server_version(outage_stack))
    ws = await _open(outage_stack, "contract-stale", other_version)
    assert (await _next(ws))["reason"] == "unsupported_version"
    assert await _close_code(ws) == CloseCode.UNSUPPORTED_VERSION


async def test_a_bad_token_is_closed_4001(outage_stack):
    url = protocol.live_url(outage_stack.live_url, "agent.nobody.forged", _server_version(outage_stack))
    ws = await connect(url, proxy=None, open_timeout=TIMEOUT_S)
    assert (await _next(ws))["reason"] == "unauthorized"
    assert await _close_code(ws) == CloseCode.UNAUTHORIZED


async def test_garbage_closes_only_the_sender_while_others_keep_their_updates_in_order(outage_stack, store):
    version = _server_version(outage_stack)
    bystander = await _open(outage_stack, "contract-bystander", version)
    vandal = await _open(outage_stack, "contract-vandal", version)
    snapshot = await _next(bystander)
    assert snapshot["type"] == "snapshot"
    assert (await _next(vandal))["type"] == "snapshot"

    before, after = _markers(3), _markers(3)
    _publish(store, before)
    await vandal.send(b"\x00\xde\xad\xbe\xef not a frame")
    assert await _close_code(vandal) == CloseCode.MALFORMED_FRAME
    _publish(store, after)

    updates = await _updates_until(bystander, before + after)
    _assert_in_order_without_gaps(updates, snapshot["channels"][CHANNEL]["seq"], before + after)
    await bystander.close()


@pytest.mark.parametrize("garbage", ["this is not json", '{"type": "launch_missiles"}', "[]"])
async def test_every_kind_of_garbage_is_a_malformed_frame(outage_stack, garbage):
    ws = await _open(outage_stack, "contract-vandal", _server_version(outage_stack))
    assert (await _next(ws))["type"] == "snapshot"
    await ws.send(garbage)
    assert await _close_code(ws) == CloseCode.MALFORMED_FRAME


async def test_a_resumed_client_gets_exactly_the_updates_it_missed_in_order(outage_stack, store):
    version = _server_version(outage_stack)
    ws = await _open(outage_stack, "contract-resumer", version)
    snapshot = await _next(ws)
    positions = {channel: state["seq"] for channel, state in snapshot["channels"].items()}
    seen = _markers(2)
    _publish(store, seen)
    for update in await _updates_until(ws, seen):
        positions[CHANNEL] = update["seq"]
    await ws.close()  # the laptop lid closes; updates keep flowing

    missed = _markers(5)
    _publish(store, missed)

    ws = await _open(outage_stack, "contract-resumer", version, resume=positions)
    first = await _next(ws)
    assert first["type"] == "resumed", f"expected a replay, got a {first['type']} (is LIVE_RESUME on?)"
    replayed = await _updates_until(ws, missed)
    _assert_in_order_without_gaps(replayed, positions[CHANNEL], missed)
    await ws.close()


async def test_updates_the_server_dropped_leave_a_hole_clients_can_see(outage_stack, outage_fault, store):
    """With the failpoint `live.drop_updates` set, the live server reads updates and sends them to
    nobody; the first update after it is cleared arrives with its sequence number moved past them,
    so every client knows it missed some (and resyncs), none silently shows stale data."""
    ws = await _open(outage_stack, "contract-dropped", _server_version(outage_stack))
    snapshot = await _next(ws)
    start = snapshot["channels"][CHANNEL]["seq"]
    dropped, after = _markers(3), _markers(1)
    with outage_fault(Failpoint("live.drop_updates")):
        await asyncio.sleep(FAILPOINT_REFRESH_S)
        _publish(store, dropped)
        await asyncio.sleep(FAILPOINT_REFRESH_S)  # the server has read them, and sent them to nobody
    await asyncio.sleep(FAILPOINT_REFRESH_S)
    _publish(store, after)

    updates = await _updates_until(ws, after)
    markers = [u["data"].get("marker") for u in updates]
    assert not set(dropped) & set(markers), "an update sent while the failpoint was set"
    assert updates[0]["seq"] > start + len(dropped), "no hole in the sequence where updates were dropped"
    await ws.close()
