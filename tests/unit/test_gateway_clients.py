"""The client half of the gateway incident: retry policies, the retry budget, rates over time,
and the api's admission control (limits, queue timeout, deadline, drain)."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from harness.workloads.pollers import (
    BUDGETED,
    IMMEDIATE,
    LARGE,
    ORDINARY,
    AgentPollers,
    Attempt,
    PollingAgent,
    PollSeconds,
    RetryBudget,
    outcomes,
    refusals,
    rows_between,
    sent_per_second,
    waits,
)
from services.api import deadline
from services.api.admission import Admission
from services.api.errors import ApiError


def test_immediate_policy_retries_at_once_and_ignores_retry_after():
    rng = random.Random(1)
    assert IMMEDIATE.delay(1, retry_after_s=2.0, rng=rng) == pytest.approx(0.05)
    assert IMMEDIATE.delay(4, retry_after_s=None, rng=rng) == pytest.approx(0.05)


def test_budgeted_policy_waits_for_retry_after_plus_full_jitter_within_the_backoff():
    rng = random.Random(1)
    delays = [BUDGETED.delay(2, retry_after_s=1.0, rng=rng) for _ in range(200)]
    assert all(1.0 <= d <= 1.5 for d in delays)  # Retry-After, then uniform(0, 0.25 * 2)
    assert max(delays) - min(delays) > 0.3  # jittered, not in step


def test_a_budget_earns_one_retry_per_ten_requests_and_an_unbudgeted_one_never_refuses():
    budget = RetryBudget(ratio=0.1, cap=1.0)
    assert budget.allow_retry()  # starts full
    assert not budget.allow_retry()
    for _ in range(9):
        budget.note_request()
    assert not budget.allow_retry()
    budget.note_request()
    assert budget.allow_retry()
    unbounded = RetryBudget(ratio=None, cap=0.0)
    assert all(unbounded.allow_retry() for _ in range(100))


def _attempt(
    at: float,
    size: str = ORDINARY,
    latency_s: float | None = 0.01,
    outcome: str = "200",
    agent: str = "agent",
    attempt: int = 1,
    refusal: str | None = None,
) -> Attempt:
    return Attempt(at, agent, size, attempt, outcome, latency_s, refusal=refusal)


def _seconds(attempts: list[Attempt]) -> list[dict]:
    """The rows PollSeconds hands its sink for these attempts, all sent before any ends."""
    rows: list[dict] = []
    seconds = PollSeconds(lambda stream, **row: rows.append(row))
    for attempt in attempts:
        seconds.started(attempt)
    for attempt in attempts:
        seconds.ended(attempt)
    seconds.close()
    return rows


def test_attempts_are_kept_per_second_pooling_ordinary_agents_and_keeping_large_accounts_apart():
    rows = _seconds(
        [
            _attempt(100.1, agent="a1"),
            _attempt(100.9, agent="a2", latency_s=0.03),
            _attempt(100.5, size=LARGE, agent="big", latency_s=2.0, outcome="timeout"),
            _attempt(100.7, size=LARGE, agent="big", latency_s=0.9, outcome="503", attempt=2,
                     refusal="deadline_exceeded"),
        ]
    )  # fmt: skip
    assert sorted(rows, key=lambda r: r["account"]) == [
        {"t": 100, "size": LARGE, "account": "big", "sent": 2, "first": 1, "ok": 0,
         "outcomes": {"timeout": 1, "503": 1}, "refusals": {"deadline_exceeded": 1}, "ms": [900.0]},
        {"t": 100, "size": ORDINARY, "account": ORDINARY, "sent": 2, "first": 2, "ok": 2,
         "outcomes": {}, "refusals": {}, "ms": [10.0, 30.0]},
    ]  # fmt: skip
    assert refusals(rows) == {"deadline_exceeded": 1}


def test_a_second_is_handed_over_only_once_every_attempt_sent_in_it_has_ended():
    rows: list[dict] = []
    seconds = PollSeconds(lambda stream, **row: rows.append(row))
    slow, fast = _attempt(100.2), _attempt(100.4)
    seconds.started(slow)
    seconds.started(fast)
    seconds.ended(fast)
    assert rows == []  # the slow poll of that second is still out
    seconds.ended(slow)
    assert [row["sent"] for row in rows] == [2]


def test_sent_per_second_counts_requests_and_skips_what_the_harness_never_sent():
    rows = _seconds(
        [_attempt(100.1), _attempt(100.9), _attempt(101.5), _attempt(101.6, outcome="harness_overloaded")]
    )
    assert sent_per_second(rows, 100.0, 102.0) == [2, 1]
    assert outcomes(rows) == {"200": 3, "harness_overloaded": 1}


def test_waits_count_time_outs_in_full_and_ignore_refused_connections():
    rows = _seconds(
        [
            _attempt(1.0, latency_s=0.01),
            _attempt(1.1, latency_s=2.0, outcome="timeout"),
            _attempt(1.2, latency_s=None, outcome="connect_error"),
            _attempt(1.3, size=LARGE, latency_s=9.0),
        ]
    )
    summary = waits(rows_between(rows, 0.0, 5.0, ORDINARY), timeout_s=2.0)
    assert summary.count == 2
    assert summary.max == 2.0


async def _hold(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


def _refusal(coroutine) -> ApiError:
    with pytest.raises(ApiError) as refused:
        asyncio.run(coroutine)
    return refused.value


def test_a_full_route_sheds_the_request_that_waited_past_the_queue_timeout_with_retry_after():
    async def scenario() -> None:
        admission = Admission(route_limit=1, queue_timeout_s=0.05)
        busy = asyncio.create_task(admission.run("GET /x", "a", lambda: _hold(0.3)))
        await asyncio.sleep(0.01)
        try:
            await admission.run("GET /x", "b", lambda: _hold(0.0))
        finally:
            await busy

    refused = _refusal(scenario())
    assert (refused.status_code, refused.code, refused.headers["Retry-After"]) == (503, "overloaded", "1")


def test_one_caller_beyond_its_share_of_a_route_gets_429():
    async def scenario() -> None:
        admission = Admission(caller_limit=1)
        first = asyncio.create_task(admission.run("['GET'] /x", "big", lambda: _hold(0.2)))
        await asyncio.sleep(0.01)
        assert await admission.run("['POST'] /x", "big", lambda: _hold(0.0)) == "done"  # writes are not
        try:
            await admission.run("['GET'] /x", "big", lambda: _hold(0.0))
        finally:
            await first

    assert _refusal(scenario()).status_code == 429


def test_work_past_the_deadline_is_dropped_and_a_draining_api_takes_no_new_work():
    refused = _refusal(Admission(deadline_s=0.05).run("GET /x", "a", lambda: _hold(1.0)))
    assert (refused.status_code, refused.code) == (503, "deadline_exceeded")
    draining = Admission()
    draining.draining = True
    assert _refusal(draining.run("GET /x", "a", lambda: _hold(0.0))).code == "draining"


async def _round_trips_that_swallow_cancellation(done: list[int]) -> str:
    """Like redis-py on the image's Python 3.11.2: a cancelled wait on the socket goes on regardless.
    The store checks the request's deadline before each round trip, as `DeadlineAwareRedis` does."""
    for n in range(100):
        deadline.check()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.01)
        done.append(n)
    return "all 100 round trips"


def test_a_read_whose_round_trips_ignore_cancellation_still_stops_at_its_deadline():
    done: list[int] = []
    admission = Admission(deadline_s=0.05)
    work = lambda: _round_trips_that_swallow_cancellation(done)  # noqa: E731
    refused = _refusal(admission.run("['GET'] /conversations", "big", work))
    assert refused.code == "deadline_exceeded"
    assert len(done) < 100  # stopped at the first round trip past the deadline, not run to the end


def test_a_write_is_never_cut_between_its_round_trips():
    done: list[int] = []
    admission = Admission(deadline_s=0.05)
    work = lambda: _round_trips_that_swallow_cancellation(done)  # noqa: E731
    assert asyncio.run(admission.run("['POST'] /messages", "bot", work)) == "all 100 round trips"
    assert len(done) == 100


def test_a_caller_whose_read_ran_out_of_time_is_refused_that_read_until_its_cooldown_ends():
    async def scenario() -> list[str]:
        admission = Admission(deadline_s=0.02, deadline_cooldown_s=0.3)
        outcomes: list[str] = []

        async def attempt(route: str, caller: str) -> None:
            try:
                outcomes.append(await admission.run(route, caller, lambda: _hold(0.0)))
            except ApiError as refused:
                outcomes.append(f"{refused.status_code} {refused.code} {refused.headers['Retry-After']}")

        try:
            await admission.run("['GET'] /conversations", "big", lambda: _hold(1.0))
        except ApiError as refused:
            outcomes.append(f"{refused.status_code} {refused.code} {refused.headers['Retry-After']}")
        await attempt("['GET'] /conversations", "big")  # told to come back later, and held to it
        await attempt("['GET'] /conversations", "agent")  # everyone else is served
        await attempt("['GET'] /tickets", "big")  # and the same caller elsewhere
        await attempt("['POST'] /conversations", "big")
        await asyncio.sleep(0.35)
        await attempt("['GET'] /conversations", "big")  # after the cooldown, admitted again
        return outcomes

    assert asyncio.run(scenario()) == [
        "503 deadline_exceeded 1",
        "429 cooling_down 1",
        "done",
        "done",
        "done",
        "done",
    ]


def test_without_limits_everything_is_admitted_and_in_flight_is_counted_back_to_zero():
    admission = Admission()
    assert asyncio.run(admission.run("GET /x", "a", lambda: _hold(0.0))) == "done"
    assert admission.in_flight == 0


def test_polls_still_out_when_the_run_ends_are_abandoned_after_a_short_grace():
    async def scenario() -> list[str]:
        async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(30)

        server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        agents = [PollingAgent("agent00", ORDINARY, 1.0)]
        polling = AgentPollers(f"http://127.0.0.1:{port}", agents, IMMEDIATE, random.Random(1))
        polling.finish_grace_s = 0.1
        stop = asyncio.Event()
        task = asyncio.create_task(polling.run(stop))
        await asyncio.sleep(0.3)
        while not polling.attempts:  # its first poll starts at a random offset within the interval
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, 2.0)  # not the client's 10 s timeout
        server.close()
        return [a.outcome for a in polling.attempts]

    assert asyncio.run(scenario()) == ["abandoned"]
