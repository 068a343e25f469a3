"""Service settings, read once from the environment.

Every resilience mechanism is a switch here, so a scenario profile can turn it off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

_TRUE = {"on", "true", "yes", "1"}
_FALSE = {"off", "false", "no", "0"}


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


def _switch(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name}={raw!r}: expected one of on/off, true/false, yes/no, 1/0")


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a number") from None


def _text(name: str, default: str) -> str:
    return os.environ.get(name) or default


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    amqp_nodes: tuple[str, ...] = ("127.0.0.1",)
    amqp_user: str = "outage"
    amqp_password: str = "outage"
    admin_token: str = "outage-admin-token"
    token_secret: str = "outage-lab-secret"

    # Resilience switches (hardened defaults).
    outbox: bool = True  # api writes events to a Redis outbox; the relay publishes them
    publisher_confirms: bool = True  # relay marks an event sent only after the broker confirms
    idempotent_consumer: bool = True  # worker applies each event id's effects once
    ack_after_work: bool = True  # worker acks only after the effects are stored
    reliable_jobs: bool = True  # background jobs stay pending until done; reclaimed from dead workers
    live_resume: bool = True  # live clients resume from their last sequence
    bulk_isolation: bool = True  # bulk events travel on their own bounded queue

    worker_prefetch: int = 50
    live_protocol: int = 1
    live_history: int = 1000
    max_body_bytes: int = 64 * 1024
    live_port: int = 8765
    # What the live server tells a client at another protocol version: "reload" closes it 4002 (it must
    # reload); "reconnect" closes it 1012, a code clients treat as "reconnect now" (the incident's storm).
    live_stale_close: str = "reload"
    live_max_handshakes_per_s: float = 200.0  # admission control; 0 = unlimited
    live_max_connections_per_agent: int = 10  # tabs per agent; 0 = unlimited
    live_heartbeat_s: float = 10.0  # application ping interval
    live_heartbeat_timeout_s: float = 25.0  # silence before close 4009; 0 = never (half-open held)
    live_send_queue: int = 1000  # updates buffered per client before it is closed 1008
    redis_instrumentation: str = "off"  # off | raise_all | break_fetch (a broken "deploy")
    # The conversation list: "batched" (two round trips a page) or "per_ticket" (a release that
    # reads each conversation in its own round trip; its cost grows with the account).
    conversations_query: str = "batched"
    conversations_pagination: bool = True  # every query answers one page; off = the whole list at once
    api_route_concurrency: int = 16  # requests one route works on at once; 0 = unlimited
    api_caller_concurrency: int = 4  # one caller's requests in flight on a route (429 beyond); 0 = none
    api_queue_timeout_s: float = 0.25  # wait for a slot this long, then 503 + Retry-After (not done late)
    api_request_deadline_s: float = 1.0  # work on a request stops after this (503); 0 = no deadline
    api_drain_s: float = 2.0  # on SIGTERM: refuse new work and finish in-flight for up to this; 0 = no drain
    email_send_ms: float = 0.0  # how long handing one email to the mail provider takes (delivery jobs)
    # Direct publishing only (outbox off): how long a request keeps retrying a failed publish before
    # it answers 503. A retry in the request path holds the request, and the gateway slot, that long.
    publish_retry_s: float = 0.0

    @classmethod
    def from_env(cls) -> Settings:
        nodes = tuple(n.strip() for n in _text("AMQP_NODES", "127.0.0.1").split(",") if n.strip())
        instrumentation = _text("REDIS_INSTRUMENTATION", "off")
        if instrumentation not in {"off", "raise_all", "break_fetch"}:
            raise SettingsError(
                f"REDIS_INSTRUMENTATION={instrumentation!r}: expected off, raise_all or break_fetch"
            )
        stale_close = _text("LIVE_STALE_CLIENT_CLOSE", cls.live_stale_close)
        conversations_query = _text("CONVERSATIONS_QUERY", cls.conversations_query)
        if conversations_query not in {"batched", "per_ticket"}:
            raise SettingsError(
                f"CONVERSATIONS_QUERY={conversations_query!r}: expected batched or per_ticket"
            )
        if stale_close not in {"reload", "reconnect"}:
            raise SettingsError(f"LIVE_STALE_CLIENT_CLOSE={stale_close!r}: expected reload or reconnect")
        return cls(
            redis_url=_text("REDIS_URL", cls.redis_url),
            amqp_nodes=nodes,
            amqp_user=_text("AMQP_USER", cls.amqp_user),
            amqp_password=_text("AMQP_PASSWORD", cls.amqp_password),
            admin_token=_text("ADMIN_TOKEN", cls.admin_token),
            token_secret=_text("TOKEN_SECRET", cls.token_secret),
            outbox=_switch("OUTBOX", cls.outbox),
            publisher_confirms=_switch("PUBLISHER_CONFIRMS", cls.publisher_confirms),
            idempotent_consumer=_switch("IDEMPOTENT_CONSUMER", cls.idempotent_consumer),
            ack_after_work=_switch("ACK_AFTER_WORK", cls.ack_after_work),
            reliable_jobs=_switch("RELIABLE_JOBS", cls.reliable_jobs),
            live_resume=_switch("LIVE_RESUME", cls.live_resume),
            bulk_isolation=_switch("BULK_ISOLATION", cls.bulk_isolation),
            worker_prefetch=int(_number("WORKER_PREFETCH", cls.worker_prefetch)),
            live_protocol=int(_number("LIVE_PROTOCOL", cls.live_protocol)),
            live_history=int(_number("LIVE_HISTORY", cls.live_history)),
            max_body_bytes=int(_number("MAX_BODY_BYTES", cls.max_body_bytes)),
            live_port=int(_number("LIVE_PORT", cls.live_port)),
            live_stale_close=stale_close,
            live_max_handshakes_per_s=_number("LIVE_MAX_HANDSHAKES_PER_S", cls.live_max_handshakes_per_s),
            live_max_connections_per_agent=int(
                _number("LIVE_MAX_CONNECTIONS_PER_AGENT", cls.live_max_connections_per_agent)
            ),
            live_heartbeat_s=_number("LIVE_HEARTBEAT_S", cls.live_heartbeat_s),
            live_heartbeat_timeout_s=_number("LIVE_HEARTBEAT_TIMEOUT_S", cls.live_heartbeat_timeout_s),
            live_send_queue=int(_number("LIVE_SEND_QUEUE", cls.live_send_queue)),
            redis_instrumentation=instrumentation,
            conversations_query=conversations_query,
            conversations_pagination=_switch("CONVERSATIONS_PAGINATION", cls.conversations_pagination),
            api_route_concurrency=int(_number("API_ROUTE_CONCURRENCY", cls.api_route_concurrency)),
            api_caller_concurrency=int(_number("API_CALLER_CONCURRENCY", cls.api_caller_concurrency)),
            api_queue_timeout_s=_number("API_QUEUE_TIMEOUT_S", cls.api_queue_timeout_s),
            api_request_deadline_s=_number("API_REQUEST_DEADLINE_S", cls.api_request_deadline_s),
            api_drain_s=_number("API_DRAIN_S", cls.api_drain_s),
            email_send_ms=_number("EMAIL_SEND_MS", cls.email_send_ms),
            publish_retry_s=_number("PUBLISH_RETRY_S", cls.publish_retry_s),
        )

    def switches(self) -> dict[str, bool]:
        """The resilience switches and their state, for /health and the harness."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.type == "bool"}
