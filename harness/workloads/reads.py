"""Agents reading tickets: the helpdesk's everyday reads, open loop, each one in the history.

A read is what an agent does after logging in (open a ticket); its availability shows whether
the api stays up for everything that does not need the failed component.
"""

from __future__ import annotations

import asyncio
import random

import httpx

from harness.record.history import History
from harness.workloads.load import open_loop

READ_KIND = "read_ticket"


class ReadLoad:
    def __init__(
        self,
        api_url: str,
        token: str,
        history: History,
        rng: random.Random,
        rate: float,
        tickets: list[int],
        timeout: float = 2.0,
        name: str = "reads",
    ) -> None:
        if rate <= 0 or not tickets:
            raise ValueError("a read load needs a positive rate and at least one ticket")
        self._api_url, self._token, self._history = api_url, token, history
        self._rng, self.rate, self._tickets, self._timeout, self.name = rng, rate, tickets, timeout, name

    async def run(self, stop: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {self._token}"}
        async with httpx.AsyncClient(
            base_url=self._api_url, headers=headers, timeout=self._timeout
        ) as client:
            await open_loop(self.rate, stop, lambda n: self._read(client, n), self._refuse)

    async def _read(self, client: httpx.AsyncClient, n: int) -> None:
        ticket = self._rng.choice(self._tickets)
        op = self._history.invoke(f"{self.name}-{n % 8}", READ_KIND, None, ticket_id=ticket)
        try:
            reply = await client.get(f"/tickets/{ticket}")
        except httpx.ConnectError as exc:
            op.fail(f"connect: {exc}")
            return
        except httpx.HTTPError as exc:  # a time-out, a reset: no answer
            op.info(type(exc).__name__)
            return
        if reply.status_code == 200:
            op.ok(status=200)
        else:
            op.fail(f"HTTP {reply.status_code}", status=reply.status_code)

    def _refuse(self, n: int) -> None:
        self._history.invoke(f"{self.name}-{n % 8}", READ_KIND).fail("harness: too many requests in flight")
