"""How many messages per second go through api -> outbox -> relay -> broker -> worker.

Posts N messages with a fixed number of concurrent clients (closed loop: as fast as the stack
answers), then waits until the worker has processed every acknowledged one. Prints the figures.
The clients post to the gateway's own address on the compose network (not through Docker's port
proxy) over lean kept-alive connections (http11.py): with httpx, the load generator took more CPU
than the api it measured, and the figure was the generator's (278 messages/s, then about 540).
Needs the stack up (`outage up`). bench/ratios.py also takes the broker's own ceiling and the relay's
replay rate from here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pika
from http11 import Connection, HttpError

from harness.checks.checker import MessageVerdict, check_messages
from harness.engine.waiting import WaitTimeout, wait_until
from harness.observe.observer import EffectsObserver
from harness.record.history import History
from harness.stack.compose_stack import ComposeStack
from harness.stack.credentials import agent_token, broker_login
from harness.stack.protocol import Endpoints


@dataclass
class PipelineFigures:
    acked: int
    lost: int
    intake_per_s: float
    end_to_end_per_s: float
    p50_s: float
    p99_s: float


@dataclass
class Ceiling:
    publish_per_s: float
    consume_per_s: float


async def _tickets(api_url: str, count: int) -> list[int]:
    connection = Connection(api_url, {"Authorization": f"Bearer {agent_token('bench')}"})
    ids = []
    try:
        for n in range(count):
            status, body = await connection.post_json(
                "/tickets", {"subject": f"bench {n}", "customer": "b@example.test"}
            )
            if status != 201:
                raise HttpError(f"creating a bench ticket answered {status}: {body[:200]!r}")
            ids.append(json.loads(body)["id"])
    finally:
        await connection.close()
    return ids


async def _post_all(
    api_url: str, history: History, ticket_ids: list[int], messages: int, concurrency: int
) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(messages):
        queue.put_nowait(n)
    run_id = f"{time.time():.0f}"

    async def client(worker: int) -> None:
        # Each client is a caller of its own: the api's per-caller limit (a mitigation, 4 requests
        # in flight) would otherwise make the pipeline's figure that limit's.
        connection = Connection(api_url, {"Authorization": f"Bearer {agent_token(f'bench-{worker}')}"})
        try:
            while not queue.empty():
                n = queue.get_nowait()
                ticket = ticket_ids[n % len(ticket_ids)]
                key = f"bench-{run_id}-{n}"
                op = history.invoke(f"bench-{worker}", "post_message", key, ticket_id=ticket)
                try:
                    status, _ = await connection.post_json(
                        f"/tickets/{ticket}/messages", {"body": "b", "id": key}
                    )
                except (OSError, HttpError) as exc:  # a time-out is an OSError too
                    op.info(f"{type(exc).__name__}: {exc}")  # it may have been stored
                    continue
                if status == 202:
                    op.ok()
                else:
                    op.fail(f"HTTP {status}")
        finally:
            await connection.close()

    await asyncio.gather(*(client(w) for w in range(concurrency)))


async def _all_processed(observer: EffectsObserver, history: History, timeout: float) -> MessageVerdict:
    async def drained() -> MessageVerdict | None:
        await observer.read_available()
        verdict = check_messages(history, op_kind="post_message")
        return verdict if verdict.lost == 0 else None

    try:
        return await wait_until(
            drained, timeout=timeout, what="every acknowledged message processed", interval=0.2
        )
    except WaitTimeout:
        return check_messages(history, op_kind="post_message")


async def measure(messages: int, concurrency: int, tickets: int) -> PipelineFigures:
    """Post `messages` with `concurrency` clients (closed loop), until every one is processed."""
    stack = ComposeStack()
    endpoints = stack.endpoints()
    history = History()
    observer = EffectsObserver(endpoints.redis, history)
    await observer.start_from_now()
    gateway = f"http://{stack.address('gateway')}:8000"
    ticket_ids = await _tickets(gateway, tickets)
    started = time.monotonic()
    await _post_all(gateway, history, ticket_ids, messages, concurrency)
    acked_in = time.monotonic() - started
    verdict = await _all_processed(observer, history, 300)
    processed_in = time.monotonic() - started
    await observer.close()
    latency = verdict.latency
    return PipelineFigures(
        verdict.acked,
        verdict.lost,
        verdict.acked / acked_in,
        verdict.acked / processed_in,
        latency.p50 or 0.0,
        latency.p99 or 0.0,
    )


async def measure_replay(stack: ComposeStack, messages: int) -> float:
    """Events per second the relay replays: the relay is stopped while `messages` are accepted
    into the outbox, then started; timed from its start until the worker processed them all."""
    endpoints = stack.endpoints()
    history = History()
    observer = EffectsObserver(endpoints.redis, history)
    await observer.start_from_now()
    stack.stop("relay")
    try:
        ticket_ids = await _tickets(endpoints.api, 20)
        await _post_all(endpoints.api, history, ticket_ids, messages, 32)
    finally:
        stack.start("relay")
    started = time.monotonic()
    verdict = await _all_processed(observer, history, 300)
    seconds = time.monotonic() - started
    await observer.close()
    if verdict.lost:
        raise RuntimeError(f"{verdict.lost} messages not replayed within 300 s")
    return verdict.acked / seconds


def broker_ceiling(endpoints: Endpoints, messages: int, publishers: int = 32) -> Ceiling:
    """What the cluster itself takes: persistent messages with publisher confirms into a quorum
    queue from `publishers` connections, then one manual-ack consumer draining them."""
    user, password = broker_login()
    urls = list(endpoints.amqp.values())
    queue = f"bench.ceiling.{int(time.time())}"

    def connect(n: int) -> pika.BlockingConnection:
        address = urls[n % len(urls)].removeprefix("amqp://")
        host, port = address.split(":")
        credentials = pika.PlainCredentials(user, password)
        return pika.BlockingConnection(pika.ConnectionParameters(host, int(port), credentials=credentials))

    setup = connect(0)
    setup.channel().queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    per_publisher = messages // publishers
    body = b"x" * 200

    # The clock starts once every publisher is connected: opening 32 connections is not publishing
    # (it took a third of the 3,000-message figure's time, and made the ceiling look low).
    connected = threading.Barrier(publishers + 1)

    def publish(n: int) -> None:
        connection = connect(n)
        channel = connection.channel()
        channel.confirm_delivery()
        connected.wait(timeout=60)
        for _ in range(per_publisher):
            channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))
        connection.close()

    with ThreadPoolExecutor(publishers) as pool:
        done = [pool.submit(publish, n) for n in range(publishers)]
        connected.wait(timeout=60)
        started = time.monotonic()
        for future in done:
            future.result()
        publish_s = time.monotonic() - started
    total = per_publisher * publishers

    channel = setup.channel()
    channel.basic_qos(prefetch_count=200)
    consumed = 0
    started = time.monotonic()
    for method, _properties, _body in channel.consume(queue, inactivity_timeout=10):
        if method is None:
            break
        channel.basic_ack(method.delivery_tag)
        consumed += 1
        if consumed == total:
            break
    consume_s = time.monotonic() - started
    channel.cancel()
    channel.queue_delete(queue)
    setup.close()
    if consumed != total:
        raise RuntimeError(f"the ceiling's consumer got {consumed} of {total} messages")
    return Ceiling(total / publish_s, total / consume_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--tickets", type=int, default=20)
    args = parser.parse_args()
    figures = asyncio.run(measure(args.messages, args.concurrency, args.tickets))
    print(
        f"acked {figures.acked}, lost {figures.lost}; api intake {figures.intake_per_s:.1f}/s, "
        f"end to end {figures.end_to_end_per_s:.1f}/s; p50 {figures.p50_s:.3f} s, p99 {figures.p99_s:.3f} s"
    )


if __name__ == "__main__":
    main()
