"""Open-loop load: requests go out on a schedule whatever happened to the previous ones.

A closed loop would slow down with the system and hide an outage as silence; an open loop turns
it into errors and time-outs, as real customers do.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.checks.latency import LatencySummary, summarize
from harness.engine.waiting import pause
from harness.record.history import History

# Requests in flight, retries included. More would queue in the HTTP client's pool, whose request
# assignment grows with the square of the queue and starves the event loop (seen at 5,000).
MAX_IN_FLIGHT = 1000
MAX_ATTEMPTS = 3  # per message, when the api sheds load and says when to come back
MAX_RETRY_WAIT_S = 2.0
# An integration that retries an unknown outcome keeps at it for about a minute, backing off
# exponentially (full jitter), as job queues of customers' integrations do.
UNKNOWN_OUTCOME_ATTEMPTS = 6
UNKNOWN_OUTCOME_MAX_BACKOFF_S = 30.0


def _retry_after(reply: httpx.Response) -> float | None:
    if reply.status_code not in (429, 503):
        return None
    try:
        return max(0.0, float(reply.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


async def open_loop(
    rate: float,
    stop: asyncio.Event,
    start: Callable[[int], Coroutine[Any, Any, None]],
    refuse: Callable[[int], None],
) -> None:
    """Start request number n every 1/rate seconds until `stop`, each as its own task, whatever
    happened to the earlier ones; past MAX_IN_FLIGHT requests `refuse(n)` records it instead."""
    tasks: set[asyncio.Task[None]] = set()
    interval = 1.0 / rate
    next_at = time.monotonic()
    n = 0
    while not stop.is_set():
        n += 1
        if len(tasks) < MAX_IN_FLIGHT:
            task = asyncio.create_task(start(n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        else:
            refuse(n)
        next_at += interval
        await pause(stop, next_at - time.monotonic())
    if tasks:
        await asyncio.wait(tasks)


@dataclass
class LoadStats:
    sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # ok / fail / info
    statuses: Counter[str] = field(default_factory=Counter)  # HTTP status or error name
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (wall time, seconds) of answers

    def latency(self, since: float = 0.0, until: float = float("inf")) -> LatencySummary:
        return summarize(s for at, s in self.latencies if since <= at <= until)

    def errors(self) -> int:
        return self.outcomes["fail"] + self.outcomes["info"]


@dataclass
class TicketTraffic:
    """Who sends open-loop requests about tickets, how fast, and where each is recorded."""

    api_url: str
    token: str
    history: History
    rng: random.Random
    rate: float  # requests per second
    tickets: list[int]
    timeout: float = 2.0

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be positive")
        if not self.tickets:
            raise ValueError("the load needs at least one ticket")

    def client(self) -> httpx.AsyncClient:
        # Open loop: each request is a customer of its own, so none waits for another's connection.
        # A capped pool would queue them inside this process, and httpcore matches every queued
        # request against every connection on each event: with the api down, hundreds queued kept
        # the harness's event loop busy (a broker node's start took 16 s instead of 0.4 s).
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=50)
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.AsyncClient(base_url=self.api_url, headers=headers, limits=limits, timeout=self.timeout)


class MessageLoad:
    """Customer and agent messages posted to tickets at a fixed rate, each recorded in the history."""

    def __init__(
        self,
        api_url: str,
        token: str,
        history: History,
        rng: random.Random,
        rate: float,
        tickets: list[int],
        timeout: float = 2.0,
        name: str = "messages",
        retry_unknown: bool = False,
    ) -> None:
        """`retry_unknown`: also retry, with the same idempotency key, a request whose outcome is
        unknown (a time-out, a 5xx without Retry-After), as an integration with retries does."""
        self.traffic = TicketTraffic(api_url, token, history, rng, rate, tickets, timeout)
        self._history = history
        self._rng = rng
        self.rate = rate
        self._tickets = tickets
        self.name = name
        self.retry_unknown = retry_unknown
        self.stats = LoadStats()

    async def run(self, stop: asyncio.Event) -> None:
        async with self.traffic.client() as client:
            await open_loop(
                self.rate,
                stop,
                lambda n: self._post(client, n, *self._next_message(n)),
                lambda n: self._refuse(n, *self._next_message(n)),
            )

    def _next_message(self, n: int) -> tuple[int, str, str]:
        ticket = self._rng.choice(self._tickets)
        author = "customer" if self._rng.random() < 0.7 else "agent"
        return ticket, f"{self.name}-{self._rng.getrandbits(48):012x}-{n}", author

    def _refuse(self, n: int, ticket: int, key: str, author: str) -> None:
        """The harness cannot keep up; say so rather than silently slowing down."""
        op = self._history.invoke(f"{self.name}-{n % 16}", "post_message", key, ticket_id=ticket)
        op.fail("harness: too many requests in flight")
        self.stats.outcomes["fail"] += 1
        self.stats.statuses["harness_overloaded"] += 1

    async def _post(self, client: httpx.AsyncClient, n: int, ticket: int, key: str, author: str) -> None:
        """Post one message; a refusal that says when to come back (Retry-After) is retried with the
        same idempotency key, as a well-behaved client does, each attempt recorded on its own."""
        attempts = UNKNOWN_OUTCOME_ATTEMPTS if self.retry_unknown else MAX_ATTEMPTS
        for attempt in range(1, attempts + 1):
            retry_after = await self._attempt(client, n, ticket, key, author, attempt)
            if retry_after is None or attempt == attempts:
                return
            await asyncio.sleep(self._rng.uniform(0, retry_after))  # full jitter

    async def _attempt(
        self, client: httpx.AsyncClient, n: int, ticket: int, key: str, author: str, attempt: int
    ) -> float | None:
        """One request; returns the ceiling of the wait before retrying it (None: no retry)."""
        op = self._history.invoke(
            f"{self.name}-{n % 16}", "post_message", key, ticket_id=ticket, attempt=attempt
        )
        self.stats.sent += 1
        started = time.monotonic()
        try:
            reply = await client.post(
                f"/tickets/{ticket}/messages", json={"body": f"message {key}", "id": key, "author": author}
            )
        except httpx.ConnectError as exc:
            op.fail(f"connect: {exc}")  # the request never reached the api
            self._count("fail", "connect_error")
            return None
        except httpx.TimeoutException:
            op.info("timeout")  # it may or may not have been stored
            self._count("info", "timeout")
            return self._unknown_retry(attempt)
        except httpx.HTTPError as exc:
            op.info(f"{type(exc).__name__}: {exc}")
            self._count("info", type(exc).__name__)
            return self._unknown_retry(attempt)
        elapsed = time.monotonic() - started
        self.stats.latencies.append((time.time(), elapsed))
        if reply.status_code == 202:
            op.ok(status=202)
            self._count("ok", "202")
            return None
        if reply.status_code < 500:
            op.fail(f"HTTP {reply.status_code}", status=reply.status_code)
            self._count("fail", str(reply.status_code))
        else:  # a 5xx may come after the message was stored
            op.info(f"HTTP {reply.status_code}", status=reply.status_code)
            self._count("info", str(reply.status_code))
            told = _retry_after(reply)
            return min(told, MAX_RETRY_WAIT_S) if told is not None else self._unknown_retry(attempt)
        told = _retry_after(reply)
        return min(told, MAX_RETRY_WAIT_S) if told is not None else None

    def _unknown_retry(self, attempt: int) -> float | None:
        """The backoff ceiling before retrying an unknown outcome (None: this client does not)."""
        return min(UNKNOWN_OUTCOME_MAX_BACKOFF_S, 2.0**attempt) if self.retry_unknown else None

    def _count(self, outcome: str, status: str) -> None:
        self.stats.outcomes[outcome] += 1
        self.stats.statuses[status] += 1
