"""Agents polling their conversation list, as a livechat app does, with the client's retry policy.

Ordinary agents and a few large accounts (thousands of conversations) each poll on a fixed
open-loop schedule: a slow answer does not delay the next poll, so a struggling api sees the
requests pile up as real users make them pile up. Every attempt (retries included) is recorded
with when it was sent, the account size, its outcome and how long the agent waited, so a run can
show request rate and latency by account size over time.

The retry policy is the web app's own client code, so it is a declared product setting
(`WEB_POLL_RETRY`): `IMMEDIATE` retries at once with no budget (every failure multiplies the load),
`BUDGETED` retries only within a budget, with full jitter, after any Retry-After the api asks for,
and never once the next poll has made the retry stale.

A run's record gets the attempts through a sink (`run.sample`), aggregated by `PollSeconds`: one
row per second of sending and per account (ordinary agents pooled), so the checks can read rates,
latencies and outcomes by account size without a row per request.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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


POLICIES = {policy.name: policy for policy in (IMMEDIATE, BUDGETED)}


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
    refusal: str | None = None  # the error code a refusal carried (the api's or the gateway's)

    @property
    def ok(self) -> bool:
        return self.outcome == "200"

    @property
    def answered(self) -> bool:
        """An HTTP answer came back (a page or a refusal), as opposed to a time-out or a reset."""
        return self.outcome.isdigit()


Sink = Callable[..., None]  # run.sample: sink(stream, **fields)


class PollSeconds:
    """Attempts aggregated per second of sending and per account, each second handed to `sink` once
    every attempt sent in it has ended. Ordinary agents are pooled; large accounts stay apart.

    A row: `t` (the second, wall clock), `size`, `account`, `sent` (requests that left the
    harness), `first` (first tries: polls), `ok` (answered 200), `outcomes` (the others, by
    outcome), `refusals` (the refusals by the error code they carried: which mitigation, or the
    gateway, said no) and `ms` (sorted waits, in ms, of the attempts that got an HTTP answer)."""

    def __init__(self, sink: Sink, stream: str = "poll") -> None:
        self._sink = sink
        self._stream = stream
        self._rows: dict[int, dict[str, dict[str, Any]]] = {}
        self._pending: Counter[int] = Counter()

    def started(self, attempt: Attempt) -> None:
        self._pending[int(attempt.at)] += 1

    def ended(self, attempt: Attempt) -> None:
        second = int(attempt.at)
        account = attempt.agent if attempt.size == LARGE else attempt.size
        row = self._rows.setdefault(second, {}).setdefault(
            account,
            {"t": second, "size": attempt.size, "account": account, "sent": 0, "first": 0, "ok": 0,
             "outcomes": Counter(), "refusals": Counter(), "ms": []},
        )  # fmt: skip
        if attempt.outcome != "harness_overloaded":
            row["sent"] += 1
        row["first"] += attempt.attempt == 1
        if attempt.ok:
            row["ok"] += 1
        else:
            row["outcomes"][attempt.outcome] += 1
        if attempt.refusal is not None:
            row["refusals"][attempt.refusal] += 1
        if attempt.answered and attempt.latency_s is not None:
            row["ms"].append(round(attempt.latency_s * 1000, 1))
        self._pending[second] -= 1
        self._emit(before=int(time.time()))

    def close(self) -> None:
        """Hand over every second still held (the run is over)."""
        self._emit(before=None)

    def _emit(self, before: int | None) -> None:
        done = [s for s in self._rows if before is None or (s < before and self._pending[s] <= 0)]
        for second in sorted(done):
            for row in self._rows.pop(second).values():
                self._sink(
                    self._stream,
                    **{
                        **row,
                        "outcomes": dict(row["outcomes"]),
                        "refusals": dict(row["refusals"]),
                        "ms": sorted(row["ms"]),
                    },
                )
            self._pending.pop(second, None)


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
        sink: Sink | None = None,
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
        self._seconds = PollSeconds(sink) if sink is not None else None

    async def run(self, stop: asyncio.Event) -> None:
        limits = httpx.Limits(max_connections=self._max_in_flight, max_keepalive_connections=100)
        async with httpx.AsyncClient(
            base_url=self._api_url, limits=limits, timeout=self.policy.timeout_s
        ) as client:
            loops = [asyncio.create_task(self._agent_loop(client, agent, stop)) for agent in self.agents]
            await asyncio.gather(*loops)
            await self._finish_in_flight()
        if self._seconds is not None:
            self._seconds.close()

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
                self._note(
                    Attempt(time.time(), agent.name, agent.size, 1, "harness_overloaded", None), ended=True
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
        self._note(record, ended=False)
        try:
            return await self._send(client, agent, headers, record, started)
        finally:
            if self._seconds is not None:
                self._seconds.ended(record)

    def _note(self, attempt: Attempt, ended: bool) -> None:
        self.attempts.append(attempt)
        if self._seconds is not None:
            self._seconds.started(attempt)
            if ended:
                self._seconds.ended(attempt)

    async def _send(
        self,
        client: httpx.AsyncClient,
        agent: PollingAgent,
        headers: dict[str, str],
        record: Attempt,
        started: float,
    ) -> float | None:
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
        record.refusal = _error_code(reply)
        if reply.status_code == 429 or reply.status_code >= 500:
            return _retry_after(reply)
        return None


def _error_code(reply: httpx.Response) -> str:
    try:
        return str(reply.json()["error"])
    except (ValueError, KeyError, TypeError):
        return f"http_{reply.status_code}"


def _retry_after(reply: httpx.Response) -> float:
    try:
        return max(0.0, float(reply.headers.get("retry-after", "")))
    except ValueError:
        return -1.0


# -- reading the record: the rows PollSeconds wrote -------------------------------------------------

Row = dict[str, Any]


def rows_between(rows: Iterable[Row], start: float, end: float, size: str | None = None) -> list[Row]:
    """The rows of the seconds that began in [start, end), of one account size or all."""
    return [r for r in rows if start <= r["t"] < end and (size is None or r["size"] == size)]


def sent_per_second(rows: Iterable[Row], start: float, end: float) -> list[int]:
    """Requests sent in each whole second from `start` to `end` (what the harness never sent excluded)."""
    first = math.ceil(start)
    counts = [0] * max(0, math.ceil(end) - first)
    for row in rows_between(rows, first, end):
        counts[row["t"] - first] += row["sent"]
    return counts


def waits(rows: Iterable[Row], timeout_s: float) -> LatencySummary:
    """What agents waited for answers: a time-out counts in full (the client's `timeout_s`); a
    refused connection, with no wait to speak of, does not count."""
    answered = [ms / 1000 for row in rows for ms in row["ms"]]
    timed_out = sum(row["outcomes"].get("timeout", 0) for row in rows)
    return summarize(answered + [timeout_s] * timed_out)


def refusals(rows: Iterable[Row]) -> Counter[str]:
    """Refusals by the error code they carried (rows written before codes were kept have none)."""
    counted: Counter[str] = Counter()
    for row in rows:
        counted.update(row.get("refusals", {}))
    return +counted


def outcomes(rows: Iterable[Row]) -> Counter[str]:
    """Attempts by outcome ("200" for the answered pages)."""
    counted: Counter[str] = Counter()
    for row in rows:
        counted["200"] += row["ok"]
        counted.update(row["outcomes"])
    return +counted


def ok_share(rows: Sequence[Row]) -> float | None:
    """Polls answered 200 per poll made (first tries), or None with no poll."""
    polls = sum(row["first"] for row in rows)
    return sum(row["ok"] for row in rows) / polls if polls else None
