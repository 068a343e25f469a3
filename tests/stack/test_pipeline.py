"""The message pipeline end to end: api -> outbox -> relay -> RabbitMQ -> worker -> effects + email jobs.

On a healthy stack every accepted message is processed into its ticket's thread exactly once,
in the order it was sent, and emailed exactly once.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
import redis

from services.common import effects, keys

pytestmark = pytest.mark.stack

MESSAGES = 100
DEADLINE_S = 60


def _effects_since(client: redis.Redis, start: str, ticket_id: int) -> list[dict[str, str]]:
    """Effects logged after `start` that belong to the ticket."""
    entries = client.xrange(keys.EFFECTS, min=f"({start}")
    return [fields for _id, fields in entries if fields.get("ticket_id") == str(ticket_id)]


def _last_effect_id(client: redis.Redis) -> str:
    last = client.xrevrange(keys.EFFECTS, count=1)
    return last[0][0] if last else "0-0"


def _post_messages(stack: Any) -> tuple[int, list[str]]:
    headers = {"Authorization": f"Bearer {stack.agent_token('pipeline-test')}"}
    with httpx.Client(base_url=stack.api_url, headers=headers, timeout=10) as api:
        created = api.post("/tickets", json={"subject": "Pipeline check", "customer": "pipeline@example.com"})
        assert created.status_code == 201, created.text
        ticket_id = int(created.json()["id"])
        sent = []
        for n in range(MESSAGES):
            message_id = f"pipeline-{uuid.uuid4().hex[:12]}-{n}"
            accepted = api.post(
                f"/tickets/{ticket_id}/messages", json={"body": f"message {n}", "id": message_id}
            )
            assert accepted.status_code == 202, accepted.text
            sent.append(accepted.json()["id"])
    return ticket_id, sent


def _wait_until_settled(
    client: redis.Redis, start: str, ticket_id: int, sent: list[str]
) -> list[dict[str, str]]:
    """Poll until every message is processed and emailed, or the deadline passes."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        observed = _effects_since(client, start, ticket_id)
        kinds = {(f["kind"], f["message_id"]) for f in observed}
        if all((kind, m) in kinds for m in sent for kind in (effects.PROCESSED, effects.EMAIL_DELIVERED)):
            return observed
        if time.monotonic() > deadline:
            return observed
        time.sleep(0.25)


def test_every_accepted_message_is_processed_and_emailed_exactly_once(outage_stack: Any) -> None:
    client = redis.Redis.from_url(outage_stack.redis_url, decode_responses=True)
    start = _last_effect_id(client)

    ticket_id, sent = _post_messages(outage_stack)
    _wait_until_settled(client, start, ticket_id, sent)
    # A moment more, so an effect applied twice would have shown up as well.
    time.sleep(1)
    observed = _effects_since(client, start, ticket_id)

    processed = Counter(f["message_id"] for f in observed if f["kind"] == effects.PROCESSED)
    emailed = Counter(f["message_id"] for f in observed if f["kind"] == effects.EMAIL_DELIVERED)
    assert {m: processed[m] for m in sent if processed[m] != 1} == {}, "processed not exactly once"
    assert {m: emailed[m] for m in sent if emailed[m] != 1} == {}, "emailed not exactly once"
    assert set(processed) == set(sent), "the worker processed messages nobody sent"
    assert client.lrange(keys.ticket_thread(ticket_id), 0, -1) == sent, "the thread lost the sending order"


@pytest.mark.asyncio
async def test_a_connected_live_client_sees_every_message_in_order(outage_stack: Any) -> None:
    import asyncio

    from services.live.client import LiveClient

    seen: list[dict[str, Any]] = []
    client = LiveClient(
        f"{outage_stack.live_url}/live",
        outage_stack.agent_token("pipeline-viewer"),
        version=1,
        on_update=lambda channel, seq, data, at: seen.append(data) if channel == "views" else None,
    )
    client.start()
    try:
        assert await client.wait_connected(15), "the live client could not connect"
        ticket_id, sent = await asyncio.to_thread(_post_messages, outage_stack)
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            ours = [d["message_id"] for d in seen if d.get("ticket_id") in (ticket_id, str(ticket_id))]
            if len(ours) >= len(sent):
                break
            await asyncio.sleep(0.25)
    finally:
        await client.stop()
    assert ours == sent, "the live client missed, repeated or reordered view updates"
    assert client.stats.gaps == 0
