"""The stack's own resilience, under open-loop load: a broker node restart and a relay outage
lose no acknowledged message, and the outbox holds events until the relay can replay them."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest
import redis

from faults.base import injected
from faults.containers import RestartContainer, StopContainer
from harness.checks.checker import check_messages
from harness.engine.waiting import wait_until_sync
from harness.observe.observer import EffectsObserver
from harness.record.history import History
from harness.workloads.load import MessageLoad
from services.common import keys

pytestmark = [pytest.mark.stack, pytest.mark.chaos, pytest.mark.asyncio]


def _tickets(stack, count: int) -> list[int]:
    headers = {"Authorization": f"Bearer {stack.agent_token('resilience')}"}
    return [
        httpx.post(
            f"{stack.api_url}/tickets",
            json={"subject": f"r{n}", "customer": "c@example.test"},
            headers=headers,
        ).json()["id"]
        for n in range(count)
    ]


async def _under_load(stack, history: History, seconds: float, during) -> None:
    """Post messages at 30/s for `seconds`; run `during()` in a thread meanwhile; then drain."""
    observer = EffectsObserver(stack.redis_url, history)
    await observer.start_from_now()
    load = MessageLoad(
        stack.api_url, stack.agent_token("resilience"), history, random.Random(3), 30, _tickets(stack, 5)
    )
    stop_load, stop_watch = asyncio.Event(), asyncio.Event()
    watching = asyncio.create_task(observer.run(stop_watch))
    loading = asyncio.create_task(load.run(stop_load))
    await asyncio.to_thread(during)
    await asyncio.sleep(max(0.0, seconds))
    stop_load.set()
    await loading
    deadline = time.monotonic() + 90
    while check_messages(history, op_kind="post_message").lost and time.monotonic() < deadline:
        await asyncio.sleep(1)
    stop_watch.set()
    await watching
    await observer.close()


async def test_restarting_one_broker_node_under_load_loses_nothing(outage_stack):
    history = History()

    def restart_a_node() -> None:
        time.sleep(3)
        with injected(RestartContainer("rabbit2"), outage_stack.control):
            pass

    await _under_load(outage_stack, history, 5, restart_a_node)
    verdict = check_messages(history, op_kind="post_message")
    assert verdict.acked > 200
    assert verdict.lost == 0, verdict.details()
    assert verdict.duplicated == 0


async def test_outbox_holds_events_while_the_relay_is_down_and_replays_them(outage_stack):
    history = History()
    store = redis.Redis.from_url(outage_stack.redis_url, decode_responses=True)
    held: list[int] = []

    def relay_outage() -> None:
        time.sleep(2)
        with injected(StopContainer("relay", grace_s=2), outage_stack.control):
            time.sleep(8)
            held.append(store.xlen(keys.OUTBOX))

    await _under_load(outage_stack, history, 3, relay_outage)
    verdict = check_messages(history, op_kind="post_message")
    assert held[0] > 100, "the outbox should have kept the events the relay could not publish"
    assert verdict.lost == 0, verdict.details()
    assert verdict.order_violations == 0, "the replay keeps each ticket's order"
    # The worker may apply the last events before the relay, holding their confirms, deletes them.
    assert wait_until_sync(lambda: store.xlen(keys.OUTBOX) == 0, timeout=10, what="the outbox empties")
