"""The client half of the gateway incident: retry policies, the retry budget, rates over time,
and the api's admission control (limits, queue timeout, deadline, drain)."""

from __future__ import annotations

import asyncio
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
    RetryBudget,
    latency,
    over_time,
    rate_series,
)
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
    at: float, size: str = ORDINARY, latency_s: float | None = 0.01, outcome: str = "200"
) -> Attempt:
    return Attempt(at, "agent", size, 1, outcome, latency_s)


def test_rate_series_counts_requests_per_bucket_and_skips_what_the_harness_never_sent():
    attempts = [
        _attempt(100.1),
        _attempt(100.9),
        _attempt(101.5),
        _attempt(101.6, outcome="harness_overloaded"),
    ]
    assert rate_series(attempts, 100.0, 102.0, 1.0) == [2, 1]


def test_latency_counts_time_outs_in_full_and_ignores_refused_connections():
    attempts = [
        _attempt(1.0, latency_s=0.01),
        _attempt(1.1, latency_s=2.0, outcome="timeout"),
        _attempt(1.2, latency_s=None, outcome="connect_error"),
        _attempt(1.3, size=LARGE, latency_s=9.0),
    ]
    summary = latency(attempts, ORDINARY, 0.0, 5.0)
    assert summary.count == 2
    assert summary.max == 2.0


def test_over_time_reports_rate_and_latency_by_account_size():
    attempts = [_attempt(0.5), _attempt(1.5, size=LARGE, latency_s=1.0, outcome="503")]
    rows = over_time(attempts, 0.0, 2.0, bucket_s=2.0)
    assert rows == [
        {"t": 0.0, "size": ORDINARY, "rate_per_s": 0.5, "ok_share": 1.0, "p50_ms": 10.0, "p99_ms": 10.0},
        {"t": 0.0, "size": LARGE, "rate_per_s": 0.5, "ok_share": 0.0, "p50_ms": 1000.0, "p99_ms": 1000.0},
    ]


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
