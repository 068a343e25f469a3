"""Inbound email at a fixed rate, handed over the way the mail gateway does: an import job in Redis.

Each email is one operation in the history (kind `import_email`, key = its message id), so the
checker can prove that every accepted email was imported, and then delivered, exactly once.
An import promises no order against the ticket's other messages (it waits in a queue), so the
operations carry no ticket and the per-ticket order check leaves them alone.
"""

from __future__ import annotations

import asyncio
import random
import time

import redis

from harness.engine.waiting import pause
from harness.record.history import History
from services.worker.jobs import EMAIL_IMPORT, Job, enqueue

IMPORT_OP = "import_email"


class InboundEmail:
    def __init__(
        self,
        redis_url: str,
        history: History,
        rng: random.Random,
        rate: float,
        tickets: list[int],
        reliable: bool,
        name: str = "inbound",
    ) -> None:
        if rate <= 0 or not tickets:
            raise ValueError("inbound email needs a positive rate and at least one ticket")
        self._client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=2)
        self._history = history
        self._rng = rng
        self.rate = rate
        self._tickets = tickets
        self._reliable = reliable
        self.name = name
        self.accepted = 0

    async def run(self, stop: asyncio.Event) -> None:
        interval, next_at, n = 1.0 / self.rate, time.monotonic(), 0
        stamp = f"{int(time.time())}-{self._rng.getrandbits(24):06x}"
        try:
            while not stop.is_set():
                n += 1
                await asyncio.to_thread(self._accept, n, f"{self.name}-{stamp}-{n}")
                next_at += interval
                await pause(stop, next_at - time.monotonic())
        finally:
            self._client.close()

    def _accept(self, n: int, message_id: str) -> None:
        ticket = self._rng.choice(self._tickets)
        op = self._history.invoke(f"{self.name}-{n % 4}", IMPORT_OP, message_id)
        job = Job(
            EMAIL_IMPORT,
            {
                "ticket_id": ticket,
                "message_id": message_id,
                "from": f"customer{ticket}@example.test",
                "body": f"email {message_id}",
            },
        )
        try:
            enqueue(self._client, job, reliable=self._reliable)
        except redis.RedisError as exc:  # the command may or may not have reached Redis
            op.info(f"{type(exc).__name__}: {exc}")
            return
        op.ok(to_ticket=ticket)  # not `ticket_id`: that would put it under the order check
        self.accepted += 1
