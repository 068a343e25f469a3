"""An earlier run's leftovers: events still waiting in the outbox lanes or on the broker's queues.

A run starts only once they are gone. Otherwise an earlier run's messages, processed late (a
vulnerable run often leaves thousands queued), would be observed during this one as effects that
were never attempted, and its backlog would blur this run's queue depths and drain figures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import redis.asyncio as aioredis

from harness.observe.broker_watch import BrokerWatch
from services.common import broker, keys

OUTBOX_STREAMS = (keys.OUTBOX, keys.OUTBOX_BULK, keys.OUTBOX_DEFERRED)
EVENT_QUEUES = (broker.EVENTS_QUEUE, broker.BULK_QUEUE)
POLL_S = 2.0
# Nothing waiting and nothing arriving for this long means nothing more will: four of the broker's
# statistics intervals (1 s, rabbitmq.conf.template), so an empty queue is really empty.
QUIET_S = 4.0


class BacklogNotDrained(RuntimeError):
    """The leftovers did not drain within the time allowed."""


async def leftovers(client: aioredis.Redis, watch: BrokerWatch) -> dict[str, int]:
    """Events waiting now, by outbox stream or queue; empty when there are none."""
    waiting = {stream: int(await client.xlen(stream)) for stream in OUTBOX_STREAMS}
    depths = await watch.queue_depths()
    waiting.update({queue: depths.get(queue, 0) for queue in EVENT_QUEUES})
    return {where: count for where, count in waiting.items() if count}


async def wait_until_drained(
    redis_url: str, watch: BrokerWatch, timeout_s: float, note: Callable[[str], None]
) -> None:
    """Return once nothing is left; `note` hears about what is waiting, once. Raises
    BacklogNotDrained when leftovers remain after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    noted = False
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        while waiting := await leftovers(client, watch):
            if time.monotonic() > deadline:
                raise BacklogNotDrained(
                    f"an earlier backlog is still waiting after {timeout_s:.0f} s: {waiting}"
                )
            if not noted:
                note(f"waiting for an earlier run's backlog to drain: {waiting}")
                noted = True
            await asyncio.sleep(POLL_S)
    finally:
        await client.aclose()
