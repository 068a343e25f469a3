"""Steady-state probes, sampled every second all through a run.

Each sample is what an operator's dashboards would show at that instant: is the api up (the
uptime check), is it ready, how old is the newest canary message that made it end to end, how
deep are the queues, when did the worker last beat, how old is the oldest background job, did the
job runners beat, how many jobs complete per second, how old is the newest canary email delivered.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import httpx
import redis.asyncio as aioredis

from harness.engine.waiting import pause
from harness.stack.credentials import broker_login
from harness.stack.protocol import Endpoints
from services.common import keys
from services.worker.jobs import list_job_age

CANARY_TICKET_SUBJECT = "canary"
CANARY_PREFIX = "canary-"
LIVE_WORKER_S = 10.0  # a worker whose own heartbeat is older is dead, not merely its job runners
COMPLETION_WINDOW_S = 10.0


@dataclass
class ProbeSample:
    at: float  # wall-clock unix time
    t: float  # seconds since the run began
    api_up: bool = False  # the uptime check: GET /health answered 200
    api_ready: bool = False
    canary_age_s: float | None = None  # since the newest canary was seen processed
    queue_depth: int | None = None  # ready + unacked on the events queues (None: broker unreachable)
    outbox_length: int | None = None
    outbox_age_s: float | None = None  # how long the oldest unpublished event has waited
    worker_heartbeat_age_s: float | None = None
    oldest_job_age_s: float | None = None
    jobs_pending: int | None = None
    broker_alarms: list[str] = field(default_factory=list)
    # The stalest job runner of a live worker (since the worker came up, if its runners never beat).
    job_runner_heartbeat_age_s: float | None = None
    jobs_completed: int | None = None  # jobs that had their effect, ever (the workers' counter in Redis)
    job_completion_rate: float | None = None  # jobs completed per second over the last COMPLETION_WINDOW_S
    canary_job_age_s: float | None = None  # since the newest canary's email was delivered by a job

    def as_row(self) -> dict[str, Any]:
        """The sample as a row of the record's "probe" stream."""
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ProbeSample:
        """A sample read back from the record (fields it does not know are left out)."""
        return cls(**{name: row[name] for name in _FIELDS if name in row})


_FIELDS = tuple(f.name for f in fields(ProbeSample))
RELOCATE_EVERY_S = 5.0
PROBE_STREAM = "probe"  # the record's stream of probe samples, one a second


class Prober:
    def __init__(
        self,
        endpoints: Endpoints,
        clock: Callable[[], float],
        canary_ticket: int | None,
        token: str,
        interval_s: float = 1.0,
        locate: Callable[[], Endpoints] | None = None,
    ) -> None:
        self._endpoints = endpoints
        # Broker nodes publish ephemeral host ports: a node stopped and started again (a runbook, a
        # responder) answers on new ones, which `locate` (the stack's endpoints) finds.
        self._locate = locate
        self._located_at = 0.0
        self._clock = clock
        self._canary_ticket = canary_ticket
        self._token = token
        self._interval = interval_s
        self._redis = aioredis.from_url(endpoints.redis, decode_responses=True, socket_timeout=1)
        self.samples: list[ProbeSample] = []
        self.listeners: list[Callable[[ProbeSample], None]] = []
        self._canary_seen_at: float | None = None
        self._canary_job_seen_at: float | None = None
        self._canaries = itertools.count(1)
        self._worker_first_seen: dict[str, float] = {}
        self._completions: deque[tuple[float, int]] = deque()

    def canary_processed(self, at: float) -> None:
        """The observer saw a canary processed end to end."""
        self._canary_seen_at = max(at, self._canary_seen_at or 0.0)

    def canary_job_done(self, at: float) -> None:
        """The observer saw a canary's email delivered: the background jobs are alive."""
        self._canary_job_seen_at = max(at, self._canary_job_seen_at or 0.0)

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=1.0) as client:
            while not stop.is_set():
                sample = await self._sample(client)
                self.samples.append(sample)
                for listener in self.listeners:
                    listener(sample)
                await pause(stop, self._interval)
        await self._redis.aclose()

    async def _sample(self, client: httpx.AsyncClient) -> ProbeSample:
        now = time.time()
        sample = ProbeSample(at=now, t=self._clock())
        api = self._endpoints.api
        results = await asyncio.gather(
            client.get(f"{api}/health"),
            client.get(f"{api}/ready"),
            self._broker(client),
            self._redis_side(now),
            self._send_canary(client),
            return_exceptions=True,
        )
        health, ready, broker, redis_side, _ = results
        sample.api_up = isinstance(health, httpx.Response) and health.status_code == 200
        sample.api_ready = isinstance(ready, httpx.Response) and ready.status_code == 200
        if isinstance(broker, tuple):
            sample.queue_depth, sample.broker_alarms = broker
        if isinstance(redis_side, dict):
            for name, value in redis_side.items():
                setattr(sample, name, value)
        if self._canary_seen_at is not None:
            sample.canary_age_s = round(max(0.0, now - self._canary_seen_at), 3)
        if self._canary_job_seen_at is not None:
            sample.canary_job_age_s = round(max(0.0, now - self._canary_job_seen_at), 3)
        return sample

    async def _broker(self, client: httpx.AsyncClient) -> tuple[int, list[str]]:
        try:
            return await self._broker_at(client, self._endpoints.management.values())
        except ConnectionError:
            if self._locate is None or time.monotonic() - self._located_at < RELOCATE_EVERY_S:
                raise
            self._located_at = time.monotonic()
            self._endpoints = await asyncio.to_thread(self._locate)
            return await self._broker_at(client, self._endpoints.management.values())

    async def _broker_at(self, client: httpx.AsyncClient, urls: Iterable[str]) -> tuple[int, list[str]]:
        for url in urls:
            try:
                queues = await client.get(f"{url}/api/queues", auth=broker_login())
                nodes = await client.get(f"{url}/api/nodes", auth=broker_login())
            except httpx.HTTPError:
                continue
            if queues.status_code != 200:
                continue
            depth = sum(
                int(q.get("messages", 0) or 0) for q in queues.json() if q["name"].startswith("events.")
            )
            alarms = [
                f"{n['name']}:{alarm}"
                for n in (nodes.json() if nodes.status_code == 200 else [])
                for alarm in ("mem_alarm", "disk_free_alarm")
                if n.get(alarm)
            ]
            return depth, alarms
        raise ConnectionError("no broker node answered")

    async def _redis_side(self, now: float) -> dict[str, float | int | None]:
        pipe = self._redis.pipeline(transaction=False)
        pipe.xlen(keys.OUTBOX)
        pipe.xrange(keys.OUTBOX, count=1)
        pipe.hgetall(keys.WORKER_HEARTBEATS)
        pipe.hgetall(keys.JOBS_COMPLETED)
        for key in (keys.JOBS_EMAIL, keys.JOBS_IMPORT):
            pipe.type(key)
        outbox, oldest_event, beats, completed, *types = await pipe.execute()
        newest_beat = max((float(v) for v in beats.values()), default=None)
        pending, oldest = 0, 0.0
        for key, kind in zip((keys.JOBS_EMAIL, keys.JOBS_IMPORT), types, strict=True):
            if kind == "stream":
                pending += await self._redis.xlen(key)
                first = await self._redis.xrange(key, count=1)
                if first:
                    oldest = max(oldest, now - int(first[0][0].split("-")[0]) / 1000)
            elif kind == "list":
                pending += await self._redis.llen(key)
                oldest = max(oldest, list_job_age(await self._redis.lindex(key, -1), now))
        jobs_completed = sum(int(v) for v in completed.values())
        return {
            "outbox_length": outbox,
            "outbox_age_s": round(now - int(oldest_event[0][0].split("-")[0]) / 1000, 3)
            if oldest_event
            else 0.0,
            "worker_heartbeat_age_s": round(now - newest_beat, 3) if newest_beat else None,
            "jobs_pending": pending,
            "oldest_job_age_s": round(oldest, 3),
            "job_runner_heartbeat_age_s": self._job_runner_age(beats, now),
            "jobs_completed": jobs_completed,
            "job_completion_rate": self._completion_rate(jobs_completed, now),
        }

    def _job_runner_age(self, beats: dict[str, str], now: float) -> float | None:
        """Per live worker, the stalest of its runners' beats ("<worker>/<runner>" entries); the worst worker.

        Entries of workers that are gone (a redeploy gives the worker a new id) are ignored.
        """
        worst: float | None = None
        for worker, beat in beats.items():
            if "/" in worker or now - float(beat) > LIVE_WORKER_S:
                continue
            first_seen = self._worker_first_seen.setdefault(worker, now)
            runner_beats = [float(v) for name, v in beats.items() if name.startswith(f"{worker}/")]
            age = now - min(runner_beats) if runner_beats else now - first_seen
            worst = age if worst is None else max(worst, age)
        return None if worst is None else round(max(0.0, worst), 3)

    def _completion_rate(self, total: int, now: float) -> float | None:
        if self._completions and total < self._completions[-1][1]:
            self._completions.clear()  # the counter went back (Redis lost its data): start over
        self._completions.append((now, total))
        while len(self._completions) > 1 and now - self._completions[1][0] >= COMPLETION_WINDOW_S:
            self._completions.popleft()
        first_at, first_total = self._completions[0]
        if now - first_at < COMPLETION_WINDOW_S / 2:
            return None  # too short a window to tell
        return round((total - first_total) / (now - first_at), 3)

    def stop_canaries(self) -> None:
        """Send no more canaries (the load has stopped: an empty pipeline must stay empty)."""
        self._canary_ticket = None

    async def _send_canary(self, client: httpx.AsyncClient) -> None:
        if self._canary_ticket is None:
            return
        key = f"{CANARY_PREFIX}{next(self._canaries)}-{int(time.time())}"
        await client.post(
            f"{self._endpoints.api}/tickets/{self._canary_ticket}/messages",
            json={"body": "canary", "id": key},
            headers={"Authorization": f"Bearer {self._token}"},
        )
