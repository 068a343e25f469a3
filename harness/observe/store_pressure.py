"""How hard Redis is working: PING round trips, its CPU use and command rate, sampled through a run.

The incident's second spike was the database's: this is the harness's view of ours. PING
timings are what `redis-cli --latency` shows; CPU comes from INFO's used_cpu_sys/user counters.
Each sample goes to a sink (`run.sample`, stream "store"), so `pressure` reads it back from a record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from harness.checks.latency import summarize
from harness.engine.waiting import pause


@dataclass(slots=True)
class StoreSample:
    at: float  # wall clock
    ping_ms: float | None  # None: no answer within the timeout
    cpu: float | None = None  # cores busy since the previous INFO sample (1.0 = one core)
    ops_per_s: float | None = None


@dataclass
class StorePressure:
    redis_url: str
    sink: Callable[..., None]  # run.sample: sink(stream, **fields)
    interval_s: float = 0.25
    info_every: int = 4  # INFO once a second at the default interval

    async def run(self, stop: asyncio.Event) -> None:
        client = aioredis.from_url(self.redis_url, decode_responses=True, socket_timeout=2)
        previous: tuple[float, float, int] | None = None  # (monotonic, cpu seconds, commands)
        n = 0
        try:
            while not stop.is_set():
                sample = StoreSample(time.time(), None)
                try:
                    started = time.perf_counter()
                    await client.ping()
                    sample.ping_ms = (time.perf_counter() - started) * 1000
                    if n % self.info_every == 0:
                        now, cpu, commands = await _counters(client)
                        if previous is not None and now > previous[0]:
                            elapsed = now - previous[0]
                            sample.cpu = round((cpu - previous[1]) / elapsed, 3)
                            sample.ops_per_s = round((commands - previous[2]) / elapsed, 1)
                        previous = (now, cpu, commands)
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                    previous = None
                self.sink(
                    "store",
                    **{**asdict(sample), "at": round(sample.at, 3), "ping_ms": _round(sample.ping_ms)},
                )
                n += 1
                await pause(stop, self.interval_s)
        finally:
            await client.aclose()


def pressure(samples: Iterable[Mapping[str, Any]], start: float, end: float) -> dict[str, float | int | None]:
    """PING latency (ms) and the busiest second of CPU and commands among samples in [start, end)."""
    window = [s for s in samples if start <= s["at"] < end]
    pings = summarize(s["ping_ms"] for s in window if s["ping_ms"] is not None)
    cpus = [s["cpu"] for s in window if s["cpu"] is not None]
    ops = [s["ops_per_s"] for s in window if s["ops_per_s"] is not None]
    return {
        "ping_p50_ms": _round(pings.p50),
        "ping_p99_ms": _round(pings.p99),
        "ping_max_ms": _round(pings.max),
        "unanswered_pings": sum(1 for s in window if s["ping_ms"] is None),
        "cpu_max": max(cpus) if cpus else None,
        "cpu_mean": round(sum(cpus) / len(cpus), 3) if cpus else None,
        "ops_per_s_max": max(ops) if ops else None,
    }


async def _counters(client: aioredis.Redis) -> tuple[float, float, int]:
    cpu = await client.info("cpu")
    stats = await client.info("stats")
    busy = float(cpu.get("used_cpu_sys", 0.0)) + float(cpu.get("used_cpu_user", 0.0))
    return time.monotonic(), busy, int(stats.get("total_commands_processed", 0))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
