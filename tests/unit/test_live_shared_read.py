"""Handshakes waiting at once share one snapshot read, and nobody gets a read that began before it asked."""

from __future__ import annotations

import asyncio

from services.live.shared_read import SharedRead


def test_a_thousand_callers_at_once_cost_one_read():
    async def scenario() -> tuple[list[int], int]:
        calls = 0

        async def read() -> int:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.01)
            return calls

        shared = SharedRead(read)
        results = await asyncio.gather(*(shared.get() for _ in range(1000)))
        return results, shared.reads

    results, reads = asyncio.run(scenario())
    assert reads == 1
    assert set(results) == {1}


def test_a_caller_arriving_during_a_read_waits_for_the_next_one():
    async def scenario() -> tuple[int, int]:
        started = asyncio.Event()
        calls = 0

        async def read() -> int:
            nonlocal calls
            calls += 1
            this_read = calls
            started.set()
            await asyncio.sleep(0.01)
            return this_read

        shared = SharedRead(read)
        first = asyncio.ensure_future(shared.get())
        await started.wait()  # the first read is under way: what it returns may predate a late caller
        late = await shared.get()
        return await first, late

    assert asyncio.run(scenario()) == (1, 2)


def test_a_failed_read_fails_every_caller_that_joined_it():
    async def scenario() -> list[object]:
        async def read() -> int:
            raise ConnectionError("redis away")

        shared = SharedRead(read)
        return await asyncio.gather(shared.get(), shared.get(), return_exceptions=True)

    outcomes = asyncio.run(scenario())
    assert [type(o) for o in outcomes] == [ConnectionError, ConnectionError]
