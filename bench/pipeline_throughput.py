"""How many messages per second go through api -> outbox -> relay -> broker -> worker.

Posts N messages with a fixed number of concurrent clients (closed loop: as fast as the stack
answers), then waits until the worker has processed every acknowledged one. Prints the figures.
Needs the stack up (`outage up`).
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx

from harness.checks.checker import check_messages
from harness.observe.observer import EffectsObserver
from harness.record.history import History
from harness.stack.compose_stack import ComposeStack
from harness.stack.credentials import agent_token


async def _measure(messages: int, concurrency: int, tickets: int) -> None:
    endpoints = ComposeStack().endpoints()
    history = History()
    observer = EffectsObserver(endpoints.redis, history)
    await observer.start_from_now()
    headers = {"Authorization": f"Bearer {agent_token('bench')}"}
    async with httpx.AsyncClient(base_url=endpoints.api, headers=headers, timeout=10) as api:
        ticket_ids = [
            (await api.post("/tickets", json={"subject": f"bench {n}", "customer": "b@example.test"})).json()[
                "id"
            ]
            for n in range(tickets)
        ]
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(messages):
            queue.put_nowait(n)

        async def client(worker: int) -> None:
            while not queue.empty():
                n = queue.get_nowait()
                key = f"bench-{int(time.time())}-{n}"
                op = history.invoke(f"bench-{worker}", "post_message", key, ticket_id=ticket_ids[n % tickets])
                reply = await api.post(
                    f"/tickets/{ticket_ids[n % tickets]}/messages", json={"body": "b", "id": key}
                )
                if reply.status_code == 202:
                    op.ok()
                else:
                    op.fail(f"HTTP {reply.status_code}")

        started = time.monotonic()
        await asyncio.gather(*(client(w) for w in range(concurrency)))
        acked_in = time.monotonic() - started

    while True:
        await observer.read_available()
        verdict = check_messages(history, op_kind="post_message")
        if verdict.lost == 0 or time.monotonic() - started > 300:
            break
        await asyncio.sleep(0.2)
    processed_in = time.monotonic() - started
    await observer.close()
    latency = verdict.latency.as_dict()
    print(
        f"messages acked: {verdict.acked} of {messages} ({concurrency} concurrent clients, {tickets} tickets)"
    )
    print(f"api intake:     {verdict.acked / acked_in:8.1f} messages/s ({acked_in:.1f} s)")
    print(f"end to end:     {verdict.acked / processed_in:8.1f} messages/s processed ({processed_in:.1f} s)")
    print(f"lost: {verdict.lost}  duplicated: {verdict.duplicated}  end-to-end latency: {latency}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--tickets", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(_measure(args.messages, args.concurrency, args.tickets))


if __name__ == "__main__":
    main()
