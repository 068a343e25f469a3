"""Agents polling their conversation list, as a livechat app does, with the client's retry policy.

Ordinary agents and a few large accounts (thousands of conversations) each poll on a fixed
open-loop schedule: a slow answer does not delay the next poll, so a struggling api sees the
requests pile up as real users make them pile up. Every attempt (retries included) is recorded
with when it was sent, the account size, its outcome and how long the agent waited, so a run can
show request rate and latency by account size over time.

The retry policy is the client's half of the profile: `IMMEDIATE` retries at once with no budget
(every failure multiplies the load), `BUDGETED` retries only within a budget, with full jitter,
after any Retry-After the api asks for, and never once the next poll has made the retry stale.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import httpx

from harness.checks.latency import LatencySummary, summarize
from harness.engine.waiting import pause
from harness.stack import credentials

ORDINARY = "ordinary"
LARGE = "large"
NO_ANSWER = ("connect_error", "error")  # outcomes with no latency: the request never got an answer


@dataclass(frozen=True)
class RetryPolicy:
    name: str
    max_attempts: int  # first try included
    timeout_s: float  # how long the client waits for an answer
    delay_s: float  # the first retry's delay (the backoff base)
    max_delay_s: float
    full_jitter: bool  # wait uniform(0, backoff) instead of the backoff itself
    budget_ratio: float | None  # retries earned per request made; None = unbounded
    budget_cap: float = 1.0  # retries an agent may save up
    honour_retry_after: bool = False
    drop_stale: bool = False  # no retry once the next scheduled poll supersedes it

    def delay(self, retry: int, retry_after_s: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (1 = the first retry)."""
        backoff = min(self.max_delay_s, self.delay_s * 2 ** (retry - 1))
        wait = rng.uniform(0.0, backoff) if self.full_jitter else backoff
        if self.honour_retry_after and retry_after_s is not None:
            wait += retry_after_s
        return wait


# What the incident's clients did: retry at once (50 ms), five tries, a patient 10 s timeout.
IMMEDIATE = RetryPolicy(
    "immediate", max_attempts=5, timeout_s=10.0, delay_s=0.05, max_delay_s=0.05, full_jitter=False,
    budget_ratio=None,
)  # fmt: skip
# A well-behaved client: one retry per ten requests, full jitter, Retry-After honoured.
BUDGETED = RetryPolicy(
    "budgeted", max_attempts=3, timeout_s=2.0, delay_s=0.25, max_delay_s=4.0, full_jitter=True,
    budget_ratio=0.1, budget_cap=1.0, honour_retry_after=True, drop_stale=True,
)  # fmt: skip


class RetryBudget:
    """A token bucket: each request earns `ratio` of a retry, up to `cap`; a retry spends one."""

    def __init__(self, ratio: float | None, cap: float) -> None:
        self._ratio = ratio
        self._cap = cap
        self._tokens = cap

    def note_request(self) -> None:
        if self._ratio is not None:
            self._tokens = min(self._cap, self._tokens + self._ratio)

    def allow_retry(self) -> bool:
        if self._ratio is None:
            return True
        if self._tokens >= 1.0 - 1e-9:  # ten tenths make a whole retry despite float rounding
            self._tokens = max(0.0, self._tokens - 1.0)
            return True
        return False


@dataclass(frozen=True)
class PollingAgent:
    name: str
    size: str  # ORDINARY or LARGE
    interval_s: float


@dataclass(slots=True)
class Attempt:
    at: float  # wall-clock time it was sent
    agent: str
    size: str
    attempt: int  # 1 = the poll's first try
    outcome: str  # HTTP status, "timeout", "connect_error", "error", "abandoned" or "harness_overloaded"
    latency_s: float | None  # how long the agent waited; None when no answer came (refused, reset)
    items: int | None = None  # conversations in a 200 answer

    @property
    def ok(self) -> bool:
        return self.outcome == "200"


class AgentPollers:
    """A population of polling agents; `attempts` is the record of every request they sent."""

    def __init__(
        self,
        api_url: str,
        agents: Sequence[PollingAgent],
        policy: RetryPolicy,
        rng: random.Random,
        page_limit: int = 50,
        max_in_flight: int = 600,
        finish_grace_s: float = 2.0,
    ) -> None:
        self._api_url = api_url
        self.agents = list(agents)
        self.policy = policy
        self._rng = rng
        self._page_limit = page_limit
        self._max_in_flight = max_in_flight
        self.finish_grace_s = finish_grace_s
        self._in_flight: set[asyncio.Task[None]] = set()
        self.attempts: list[Attempt] = []
        self.gave_up: Counter[str] = Counter()  # polls that stopped retrying, by reason

    async def run(self, stop: asyncio.Event) -> None:
        limits = httpx.Limits(max_connections=self._max_in_flight, max_keepalive_connections=100)
        async with httpx.AsyncClient(
            base_url=self._api_url, limits=limits, timeout=self.policy.timeout_s
        ) as client:
            loops = [asyncio.create_task(self._agent_loop(client, agent, stop)) for agent in self.agents]
            await asyncio.gather(*loops)
            await self._finish_in_flight()

    async def _finish_in_flight(self) -> None:
        """A short grace for the polls still out, then they are abandoned: a vulnerable client
        may hold a request for tens of seconds (timeouts times attempts), which says nothing new."""
        if not self._in_flight:
            return
        _, pending = await asyncio.wait(self._in_flight, timeout=self.finish_grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _agent_loop(self, client: httpx.AsyncClient, agent: PollingAgent, stop: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {credentials.agent_token(agent.name)}"}
        budget = RetryBudget(self.policy.budget_ratio, self.policy.budget_cap)
        next_at = time.monotonic() + self._rng.uniform(0.0, agent.interval_s)  # agents do not poll in step
        while True:
            if await pause(stop, next_at - time.monotonic()):
                return
            next_at += agent.interval_s
            if len(self._in_flight) >= self._max_in_flight:  # the harness cannot keep up: say so
                self.attempts.append(
                    Attempt(time.time(), agent.name, agent.size, 1, "harness_overloaded", None)
                )
                continue
            task = asyncio.create_task(self._poll(client, agent, headers, budget, next_at))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _poll(
        self,
        client: httpx.AsyncClient,
        agent: PollingAgent,
        headers: dict[str, str],
        budget: RetryBudget,
        next_poll_at: float,
    ) -> None:
        budget.note_request()
        for attempt in range(1, self.policy.max_attempts + 1):
            retry_after = await self._attempt(client, agent, headers, attempt)
            if retry_after is None:
                return  # answered, or refused in a way a retry cannot fix
            if attempt == self.policy.max_attempts:
                self.gave_up["attempts"] += 1
                return
            if not budget.allow_retry():
                self.gave_up["budget"] += 1
                return
            delay = self.policy.delay(attempt, retry_after if retry_after >= 0 else None, self._rng)
            if self.policy.drop_stale and time.monotonic() + delay >= next_poll_at:
                self.gave_up["stale"] += 1
                return
            await asyncio.sleep(delay)

    async def _attempt(
        self, client: httpx.AsyncClient, agent: PollingAgent, headers: dict[str, str], attempt: int
    ) -> float | None:
        """One request; returns None when done, else the Retry-After asked for (-1 when none)."""
        sent_at, started = time.time(), time.monotonic()
        record = Attempt(sent_at, agent.name, agent.size, attempt, "error", None)
        self.attempts.append(record)
        try:
            reply = await client.get(
                f"/agents/{agent.name}/conversations", params={"limit": self._page_limit}, headers=headers
            )
        except httpx.TimeoutException:
            record.outcome, record.latency_s = "timeout", time.monotonic() - started
            return -1.0
        except httpx.ConnectError:
            record.outcome = "connect_error"
            return -1.0
        except httpx.HTTPError:
            return -1.0  # reset mid-answer (a restart): no latency to speak of
        except asyncio.CancelledError:
            record.outcome = "abandoned"  # still waiting when the run ended
            raise
        record.latency_s = time.monotonic() - started
        record.outcome = str(reply.status_code)
        if reply.status_code == 200:
            record.items = len(reply.json().get("items", ()))
            return None
        if reply.status_code == 429 or reply.status_code >= 500:
            return _retry_after(reply)
        return None


def _retry_after(reply: httpx.Response) -> float:
    try:
        return max(0.0, float(reply.headers.get("retry-after", "")))
    except ValueError:
        return -1.0


# -- reading the record -----------------------------------------------------------------------------


def rate_series(attempts: Iterable[Attempt], start: float, end: float, bucket_s: float = 1.0) -> list[int]:
    """Requests sent per bucket of `bucket_s` seconds from `start` to `end` (wall clock)."""
    buckets = [0] * max(0, math.ceil((end - start) / bucket_s))
    for a in attempts:
        if start <= a.at < end and a.outcome != "harness_overloaded":
            buckets[int((a.at - start) // bucket_s)] += 1
    return buckets


def latency(attempts: Iterable[Attempt], size: str, start: float, end: float) -> LatencySummary:
    """What agents of this size waited for answers sent in [start, end): time-outs count in full."""
    return summarize(
        a.latency_s for a in attempts if a.size == size and start <= a.at < end and a.latency_s is not None
    )


def outcomes(attempts: Iterable[Attempt], start: float, end: float, size: str | None = None) -> Counter[str]:
    return Counter(a.outcome for a in attempts if start <= a.at < end and (size is None or a.size == size))


def over_time(
    attempts: Sequence[Attempt], start: float, end: float, bucket_s: float = 5.0
) -> list[dict[str, object]]:
    """Per bucket and account size: requests per second, share answered 200, p50 and p99 (ms)."""
    rows: list[dict[str, object]] = []
    at = start
    while at < end:
        upto = min(end, at + bucket_s)
        for size in (ORDINARY, LARGE):
            sent = [
                a
                for a in attempts
                if a.size == size and at <= a.at < upto and a.outcome != "harness_overloaded"
            ]
            waited = summarize(a.latency_s for a in sent if a.latency_s is not None)
            rows.append(
                {
                    "t": round(at - start, 1),
                    "size": size,
                    "rate_per_s": round(len(sent) / (upto - at), 2),
                    "ok_share": round(sum(a.ok for a in sent) / len(sent), 3) if sent else None,
                    "p50_ms": _ms(waited.p50),
                    "p99_ms": _ms(waited.p99),
                }
            )
        at = upto
    return rows


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)
