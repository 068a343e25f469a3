"""Agents reading tickets: the helpdesk's everyday reads, open loop, each one in the history.

A read is what an agent does after logging in (open a ticket); its availability shows whether
the api stays up for everything that does not need the failed component. The reads come from
READERS agents, each logged in as themself: the api limits how many requests one caller has in
flight, and one identity for every reader would meet that limit whenever the api is slow.
"""

from __future__ import annotations

import asyncio

import httpx

from harness.stack import credentials
from harness.workloads.load import TicketTraffic, open_loop

READ_KIND = "read_ticket"
READERS = 8


class ReadLoad:
    def __init__(self, traffic: TicketTraffic, name: str = "reads") -> None:
        self.traffic, self.name = traffic, name
        self._headers = [
            {"Authorization": f"Bearer {credentials.agent_token(f'{name}-agent-{n}')}"}
            for n in range(READERS)
        ]

    async def run(self, stop: asyncio.Event) -> None:
        async with self.traffic.client() as client:
            await open_loop(self.traffic.rate, stop, lambda n: self._read(client, n), self._refuse)

    async def _read(self, client: httpx.AsyncClient, n: int) -> None:
        ticket = self.traffic.rng.choice(self.traffic.tickets)
        op = self.traffic.history.invoke(f"{self.name}-{n % READERS}", READ_KIND, None, ticket_id=ticket)
        try:
            reply = await client.get(f"/tickets/{ticket}", headers=self._headers[n % READERS])
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
        self.traffic.history.invoke(f"{self.name}-{n % READERS}", READ_KIND).fail(
            "harness: too many requests in flight"
        )
