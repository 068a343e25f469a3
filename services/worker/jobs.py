"""Background email jobs kept in Redis: email delivery (one per processed message) and email import.

Reliable jobs (settings.reliable_jobs) live in streams read by the consumer group "workers": a
runner takes a job with XREADGROUP, does it, then XACKs (and deletes) it; a job whose runner died or
failed stays pending and the reclaimer takes it over with XAUTOCLAIM once it has been idle long
enough. Delivery is deduplicated by job id, so a reclaimed job never sends twice.
Naive jobs live in lists: BRPOP takes the job and it is gone, whatever happens next.

Inbound emails reach the worker as "email_import" jobs on keys.JOBS_IMPORT (see `enqueue`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from services.common import effects, keys
from services.common.backoff import Backoff
from services.common.config import Settings
from services.common.events import MESSAGE_CREATED, Event
from services.worker import metrics

log = logging.getLogger(__name__)

EMAIL_DELIVERY = "email_delivery"
EMAIL_IMPORT = "email_import"
QUEUE_KEYS = {EMAIL_DELIVERY: keys.JOBS_EMAIL, EMAIL_IMPORT: keys.JOBS_IMPORT}
_KIND_OF_KEY = {key: kind for kind, key in QUEUE_KEYS.items()}

RECLAIM_MIN_IDLE_MS = 15_000
RECLAIM_INTERVAL_S = 5.0
DONE_MARKER_TTL_S = 7 * 24 * 3600


class JobError(ValueError):
    """A queue entry that is not a well-formed job (with where it was, so it can be acknowledged)."""

    def __init__(self, message: str, kind: str | None = None, entry_id: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.entry_id = entry_id


@dataclass(frozen=True)
class Job:
    kind: str
    payload: dict[str, Any]
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    enqueued_at: float = field(default_factory=time.time)
    entry_id: str | None = None  # the stream entry it came from (reliable jobs only)

    def to_fields(self) -> dict[str, str]:
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "payload": json.dumps(self.payload, separators=(",", ":")),
            "enqueued_at": repr(self.enqueued_at),  # repr round-trips the float exactly
        }

    def to_json(self) -> str:
        return json.dumps(self.to_fields(), separators=(",", ":"))

    @classmethod
    def from_fields(cls, fields: dict[str, str], entry_id: str | None = None) -> Job:
        kind = fields.get("kind")
        if kind not in QUEUE_KEYS:
            raise JobError(f"unknown job kind {kind!r}")
        try:
            payload = json.loads(fields.get("payload") or "{}")
            enqueued_at = float(fields.get("enqueued_at") or 0.0)
        except (json.JSONDecodeError, ValueError) as exc:
            raise JobError(f"job has a malformed field: {exc}") from None
        if not isinstance(payload, dict) or not fields.get("job_id"):
            raise JobError("a job needs a job_id and an object payload")
        return cls(kind, payload, fields["job_id"], enqueued_at, entry_id)

    @classmethod
    def from_json(cls, raw: str) -> Job:
        try:
            fields = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise JobError(f"job is not JSON: {exc}") from None
        if not isinstance(fields, dict):
            raise JobError("job must be a JSON object")
        return cls.from_fields({k: str(v) if not isinstance(v, str) else v for k, v in fields.items()})


def delivery_job(event: Event) -> Job:
    return Job(
        EMAIL_DELIVERY,
        {"event_id": event.event_id, "ticket_id": event.ticket_id, "message_id": event.message_id},
    )


def enqueue(client: redis.Redis, job: Job, reliable: bool) -> None:
    """Queue a job: XADD to the kind's stream (reliable) or LPUSH onto its list (naive)."""
    key = QUEUE_KEYS[job.kind]
    if reliable:
        client.xadd(key, job.to_fields())
    else:
        client.lpush(key, job.to_json())


def age_from_entry_id(entry_id: str, now: float) -> float:
    return max(0.0, now - int(entry_id.split("-", 1)[0]) / 1000.0)


def queue_depths(
    client: redis.Redis, reliable: bool, now: float | None = None
) -> dict[str, dict[str, float]]:
    """Per kind: jobs not done yet and the age of the oldest, in seconds (0 when empty)."""
    now = time.time() if now is None else now
    depths: dict[str, dict[str, float]] = {}
    for kind, key in QUEUE_KEYS.items():
        pipe = client.pipeline(transaction=False)
        if reliable:
            pipe.xlen(key).xrange(key, count=1)
            pending, first = pipe.execute()
            age = age_from_entry_id(first[0][0], now) if first else 0.0
        else:
            pipe.llen(key).lindex(key, -1)  # LPUSH + BRPOP: the oldest job is at the tail
            pending, oldest = pipe.execute()
            age = list_job_age(oldest, now)
        depths[kind] = {"pending": pending, "oldest_age_s": round(age, 3)}
    return depths


def list_job_age(raw: str | None, now: float) -> float:
    if raw is None:
        return 0.0
    try:
        return max(0.0, now - Job.from_json(raw).enqueued_at)
    except JobError:
        return 0.0


def adopt_leftover_jobs(client: redis.Redis, reliable: bool) -> int:
    """Convert jobs queued under the other queue mode (a stream where a list is wanted, or the
    reverse), oldest first, so a redeploy that switches RELIABLE_JOBS neither fails on the key's
    type nor drops what waits there. Returns how many jobs were carried over."""
    carried = 0
    for key in QUEUE_KEYS.values():
        kind = client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind not in ("list", "stream") or (kind == "stream") == reliable:
            continue
        staging = f"{key}:adopting"
        client.rename(key, staging)
        if kind == "list":  # LPUSH puts the newest first: walk from the tail
            for raw in reversed(client.lrange(staging, 0, -1)):
                client.xadd(key, Job.from_json(raw).to_fields())
                carried += 1
        else:
            for entry_id, fields in client.xrange(staging):
                client.lpush(key, Job.from_fields(fields, entry_id).to_json())
                carried += 1
        client.delete(staging)
    return carried


# --- where jobs come from --------------------------------------------------------------------


class StreamJobs:
    """Reliable: a consumer group over the job streams."""

    def __init__(self, client: Any, consumer: str) -> None:
        self._client = client
        self.consumer = consumer

    def ensure_groups(self) -> None:
        for key in QUEUE_KEYS.values():
            try:
                # From "0": jobs queued before the group existed are taken too.
                self._client.xgroup_create(key, keys.JOBS_GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def fetch(self, block_ms: int) -> list[Job | JobError]:
        streams = {key: ">" for key in QUEUE_KEYS.values()}
        try:
            answer = self._client.xreadgroup(keys.JOBS_GROUP, self.consumer, streams, count=1, block=block_ms)
        except redis.ResponseError as exc:
            return self._create_missing_group(exc)
        return [
            _decode(key, entry_id, fields) for key, entries in answer or [] for entry_id, fields in entries
        ]

    def reclaim(self, min_idle_ms: int, count: int = 100) -> list[Job | JobError]:
        taken: list[Job | JobError] = []
        for key in QUEUE_KEYS.values():
            try:
                answer = self._client.xautoclaim(
                    key, keys.JOBS_GROUP, self.consumer, min_idle_ms, "0-0", count=count
                )
            except redis.ResponseError as exc:
                return self._create_missing_group(exc)
            taken.extend(
                _decode(key, entry_id, fields) for entry_id, fields in answer[1] if fields is not None
            )
        return taken

    def _create_missing_group(self, exc: redis.ResponseError) -> list[Job | JobError]:
        # The first start, or Redis lost its data: (re)create the group and take jobs next round.
        if "NOGROUP" not in str(exc):
            raise exc
        self.ensure_groups()
        return []

    def finish(self, kind: str, entry_id: str | None) -> None:
        if entry_id is None:
            return
        key = QUEUE_KEYS[kind]
        self._client.pipeline(transaction=True).xack(key, keys.JOBS_GROUP, entry_id).xdel(
            key, entry_id
        ).execute()


class ListJobs:
    """Naive: BRPOP removes the job before it is done."""

    def __init__(self, client: Any, consumer: str) -> None:
        self._client = client
        self.consumer = consumer

    def ensure_groups(self) -> None:
        pass  # lists need no setup

    def fetch(self, block_ms: int) -> list[Job | JobError]:
        answer = self._client.brpop(list(QUEUE_KEYS.values()), timeout=max(1, block_ms // 1000))
        if answer is None:
            return []
        _key, raw = answer
        try:
            return [Job.from_json(raw)]
        except JobError as exc:
            return [exc]

    def reclaim(self, min_idle_ms: int, count: int = 100) -> list[Job | JobError]:
        return []  # nothing is pending: a taken job is gone

    def finish(self, kind: str, entry_id: str | None) -> None:
        pass


def _decode(key: str, entry_id: str, fields: dict[str, str]) -> Job | JobError:
    try:
        return Job.from_fields(fields, entry_id)
    except JobError as exc:
        return JobError(f"{exc} (entry {entry_id} of {key})", _KIND_OF_KEY.get(key), entry_id)


# --- what a job does ------------------------------------------------------------------------

# The email "sent" once per job id: the marker and the effect are one atomic step.
_DELIVER = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(cjson.decode(ARGV[2])))
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
return 1
"""

# Stores an inbound email as a message on its ticket, once per message id, with its outbox event.
_IMPORT = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
if ARGV[3] ~= '' then redis.call('XADD', KEYS[3], '*', 'event', ARGV[3]) end
redis.call('XADD', KEYS[4], '*', unpack(cjson.decode(ARGV[4])))
redis.call('HINCRBY', KEYS[5], ARGV[5], 1)
return 1
"""


def _flat(fields: dict[str, str]) -> str:
    return json.dumps([item for pair in fields.items() for item in pair])


class JobHandler:
    """Does one job against Redis (through the runners' possibly instrumented client)."""

    def __init__(self, client: Any, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    def beat(self, runner: str) -> None:
        """The runner's heartbeat in Redis, written through the runners' own client."""
        self._client.hset(keys.WORKER_HEARTBEATS, runner, f"{time.time():.3f}")

    def handle(self, job: Job) -> bool:
        """True when the job had its effect now, False when it already had it before."""
        if job.kind == EMAIL_DELIVERY:
            return self._deliver(job)
        return self._import(job)

    def _deliver(self, job: Job) -> bool:
        # The mail provider's hand-off: the cost that makes a backlog slow to clear.
        if self._settings.email_send_ms > 0:
            time.sleep(self._settings.email_send_ms / 1000.0)
        p = job.payload
        effect = effects.effect_fields(
            effects.EMAIL_DELIVERED,
            str(p.get("event_id", "")),
            p.get("ticket_id", ""),
            p.get("message_id"),
            job_id=job.job_id,
        )
        script = self._client.register_script(_DELIVER)
        return bool(
            script(
                keys=[keys.job_done(job.job_id), keys.EFFECTS, keys.JOBS_COMPLETED],
                args=[DONE_MARKER_TTL_S, _flat(effect), job.kind],
            )
        )

    def _import(self, job: Job) -> bool:
        """Store the email as a message on its ticket, the way the api stores one, with its event."""
        p = job.payload
        try:
            ticket_id = int(p["ticket_id"])
        except (KeyError, TypeError, ValueError):
            raise JobError(
                f"import job {job.job_id} has no usable ticket_id", job.kind, job.entry_id
            ) from None
        ticket_key, view, bot = self._client.hmget(keys.ticket(ticket_id), ["id", "view", "bot"])
        if ticket_key is None:
            raise JobError(
                f"import job {job.job_id}: ticket {ticket_id} does not exist", job.kind, job.entry_id
            )
        # A fixed message id: a retried import finds the message stored and changes nothing.
        message_id = str(p.get("message_id") or f"email-{job.job_id}")
        author = str(p.get("from", ""))
        event = Event(
            MESSAGE_CREATED,
            ticket_id,
            message_id=message_id,
            data={"author": author, "bot": bot == "1", "view": view},
        )
        message = {
            "id": message_id,
            "ticket_id": ticket_id,
            "body": str(p.get("body", "")),
            "author": author,
            "received_at": time.time(),
            "event_id": event.event_id,
            "source": "email",
        }
        effect = effects.effect_fields(
            effects.EMAIL_IMPORTED, event.event_id, ticket_id, message_id, job_id=job.job_id
        )
        script = self._client.register_script(_IMPORT)
        applied = script(
            keys=[
                keys.ticket_messages(ticket_id),
                keys.ticket_message_order(ticket_id),
                keys.OUTBOX,
                keys.EFFECTS,
                keys.JOBS_COMPLETED,
            ],
            args=[
                message_id,
                json.dumps(message, separators=(",", ":")),
                event.encode().decode() if self._settings.outbox else "",
                _flat(effect),
                job.kind,
            ],
        )
        return bool(applied)


# --- the threads ----------------------------------------------------------------------------


class RunnerStatus:
    """What the runners last did, for /health and the metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.heartbeats: dict[str, float] = {}
        self.last_error: str | None = None

    def beat(self, runner: str) -> None:
        now = time.time()
        with self._lock:
            self.heartbeats[runner] = now
        metrics.RUNNER_HEARTBEAT.labels(runner).set(now)

    def failed(self, error: str) -> None:
        with self._lock:
            self.last_error = error

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"runner_heartbeats": dict(self.heartbeats), "last_error": self.last_error}


def run_jobs(
    name: str,
    source: StreamJobs | ListJobs,
    handler: JobHandler,
    status: RunnerStatus,
    stop: threading.Event,
    take: Callable[[], list[Job | JobError]],
    idle_s: float = 0.0,
) -> None:
    """The loop of one runner (or of the reclaimer, whose `take` is a reclaim): never dies."""
    backoff = Backoff(base=0.2, cap=5.0)
    while not stop.is_set():
        try:
            for job in take():
                _process(source, handler, job)
            handler.beat(name)
            status.beat(name)
            backoff.reset()
            if idle_s:
                stop.wait(idle_s)
        except Exception as exc:  # a broken client must not kill the runner; it keeps retrying
            metrics.JOB_ERRORS.labels("fetch").inc()
            status.failed(f"{name}: {type(exc).__name__}: {exc}")
            delay = backoff.next_delay()
            log.warning("job runner %s failed (%s); retrying in %.2fs", name, exc, delay)
            stop.wait(delay)


def _process(source: StreamJobs | ListJobs, handler: JobHandler, job: Job | JobError) -> None:
    if isinstance(job, JobError):
        _drop(source, job)
        return
    try:
        handler.handle(job)
    except JobError as exc:
        _drop(source, exc)
        return
    except Exception:
        metrics.JOB_ERRORS.labels(job.kind).inc()
        # Reliable: the job stays pending and is reclaimed later. Naive: it was popped, it is lost.
        log.exception("job %s (%s) failed", job.job_id, job.kind)
        return
    source.finish(job.kind, job.entry_id)
    metrics.JOBS_DONE.labels(job.kind).inc()


def _drop(source: StreamJobs | ListJobs, error: JobError) -> None:
    """A job that can never succeed: log it and acknowledge it, or the reclaimer would retry it forever."""
    log.error("dropping malformed job: %s", error)
    metrics.JOB_ERRORS.labels("malformed").inc()
    if error.kind is not None:
        source.finish(error.kind, error.entry_id)
