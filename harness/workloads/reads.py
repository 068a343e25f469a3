"""Agents reading tickets: the helpdesk's everyday reads, open loop, each one in the history.

A read is what an agent does after logging in (open a ticket); its availability shows whether
the api stays up for everything that does not need the failed component.
"""

from __future__ import annotations

import asyncio

import httpx

from harness.workloads.load import TicketTraffic, open_loop

READ_KIND = "read_ticket"


class ReadLoad:
    def __init__(self, traffic: TicketTraffic, name: str = "reads") -> None:
        self.traffic, self.name = traffic, name

    async def run(self, stop: asyncio.Event) -> None:
        async with self.traffic.client() as client:
            await open_loop(self.traffic.rate, stop, lambda n: self._read(client, n), self._refuse)

    async def _read(self, client: httpx.AsyncClient, n: int) -> None:
        ticket = self.traffic.rng.choice(self.traffic.tickets)
        op = self.traffic.history.invoke(f"{self.name}-{n % 8}", READ_KIND, None, ticket_id=ticket)
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
        self.traffic.history.invoke(f"{self.name}-{n % 8}", READ_KIND).fail(
            "harness: too many requests in flight"
        )
