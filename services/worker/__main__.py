"""`python -m services.worker`: event consumer, background job runners, heartbeat, status on :9100.

Environment besides the shared settings (services/common/config.py): WORKER_ID (default: host name).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import threading
import time
from typing import Any

import redis

from services.common import keys
from services.common.config import Settings
from services.common.failpoints import FailpointCache
from services.common.http_status import DEFAULT_PORT, start_status_server
from services.worker import jobs, metrics
from services.worker.apply import EffectApplier
from services.worker.consumer import EventConsumer
from services.worker.instrumentation import instrument

log = logging.getLogger("services.worker")

HEARTBEAT_S = 1.0
# A worker (or job runner) whose beat is this old is gone: a recreated container beats under a new
# id, so the old entry would stay in the hash for good. Pruned by any live worker, now and then.
STALE_BEAT_S = 300.0
PRUNE_EVERY_S = 60.0


def stale_beats(beats: dict[str, str], now: float, older_than_s: float = STALE_BEAT_S) -> list[str]:
    """The entries of the heartbeat hash (worker ids and "<id>/<runner>") that stopped beating."""
    stale = []
    for name, beat in beats.items():
        try:
            if now - float(beat) > older_than_s:
                stale.append(name)
        except ValueError:
            stale.append(name)  # not a time: nothing reads it
    return stale


def _redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis_url, decode_responses=True, socket_timeout=5, socket_connect_timeout=3
    )


class Heartbeat:
    """Every second: the worker's beat in Redis, and the job queues' depth for metrics and /health."""

    def __init__(self, client: redis.Redis, settings: Settings, worker_id: str) -> None:
        self._client = client
        self._settings = settings
        self._worker_id = worker_id
        self.last_beat: float | None = None
        self.depths: dict[str, Any] = {}
        self._pruned_at = 0.0

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                now = time.time()
                self._client.hset(keys.WORKER_HEARTBEATS, self._worker_id, f"{now:.3f}")
                self.last_beat = now
                metrics.HEARTBEAT.set(now)
                if now - self._pruned_at >= PRUNE_EVERY_S:
                    self._prune(now)
                self.depths = jobs.queue_depths(self._client, self._settings.reliable_jobs)
                for kind, depth in self.depths.items():
                    metrics.JOBS_PENDING.labels(kind).set(depth["pending"])
                    metrics.JOBS_OLDEST_AGE.labels(kind).set(depth["oldest_age_s"])
            except redis.RedisError as exc:
                log.warning("heartbeat failed: %s", exc)

    def _prune(self, now: float) -> None:
        stale = stale_beats(self._client.hgetall(keys.WORKER_HEARTBEATS), now)
        if stale:
            self._client.hdel(keys.WORKER_HEARTBEATS, *stale)
            log.info("removed %d stale heartbeat entries: %s", len(stale), ", ".join(sorted(stale))[:300])
        self._pruned_at = now


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # pika logs every connection step, and each refused attempt with a traceback; the service logs
    # every broker failure itself, once, in one line.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    settings = Settings.from_env()
    worker_id = os.environ.get("WORKER_ID") or socket.gethostname()
    runner_count = settings.job_runners
    stop = threading.Event()

    client = _redis(settings)
    # Only the job runners go through the (possibly broken) instrumentation layer.
    runner_client = instrument(_redis(settings), settings.redis_instrumentation)
    consumer = EventConsumer(settings, EffectApplier(client, settings), FailpointCache(client))
    heartbeat = Heartbeat(client, settings, worker_id)
    runners = jobs.RunnerStatus()

    def details() -> dict[str, Any]:
        return {
            "worker_id": worker_id,
            "broker": {"connected": consumer.connected, "node": consumer.node},
            "events": dict(consumer.counts),
            "jobs": {"reliable": settings.reliable_jobs, "queues": heartbeat.depths, **runners.snapshot()},
            "redis_instrumentation": settings.redis_instrumentation,
            "last_heartbeat": heartbeat.last_beat,
        }

    start_status_server("worker", settings, port=_status_port(), details=details)
    carried = jobs.adopt_leftover_jobs(client, settings.reliable_jobs)
    if carried:
        logging.getLogger(__name__).info("carried %d jobs over from the other queue mode", carried)
    _start_job_threads(settings, worker_id, runner_count, runner_client, runners, stop)
    threading.Thread(target=heartbeat.run, args=(stop,), name="heartbeat", daemon=True).start()

    def _shutdown(*_: Any) -> None:
        stop.set()
        consumer.stop()

    signal.signal(signal.SIGTERM, _shutdown)
    consumer.run()


def _start_job_threads(
    settings: Settings,
    worker_id: str,
    runner_count: int,
    client: Any,
    status: jobs.RunnerStatus,
    stop: threading.Event,
) -> None:
    source_type = jobs.StreamJobs if settings.reliable_jobs else jobs.ListJobs
    handler = jobs.JobHandler(client, settings)
    loops = []
    for n in range(runner_count):
        source = source_type(client, f"{worker_id}/jobs-{n}")
        loops.append((source.consumer, source, functools.partial(source.fetch, 1000), 0.0))
    if settings.reliable_jobs:
        reclaimer = source_type(client, f"{worker_id}/reclaimer")
        take = functools.partial(reclaimer.reclaim, jobs.RECLAIM_MIN_IDLE_MS)
        loops.append((reclaimer.consumer, reclaimer, take, jobs.RECLAIM_INTERVAL_S))
    for name, source, take, idle_s in loops:
        thread = threading.Thread(
            target=jobs.run_jobs,
            args=(name, source, handler, status, stop, take, idle_s),
            name=name,
            daemon=True,
        )
        thread.start()


def _status_port() -> int:
    return int(os.environ.get("STATUS_PORT") or DEFAULT_PORT)


if __name__ == "__main__":
    main()
