"""Prometheus metrics of the live server, served at GET /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class LiveMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge(
            "live_connections",
            "Open websocket sessions (after a successful admission)",
            registry=self.registry,
        )
        self.handshakes = Counter(
            "live_handshakes",
            "Websocket handshakes by outcome (accepted, throttled, unauthorized, unsupported_version, "
            "stale_reconnect, too_many_connections, malformed, unavailable)",
            ["outcome"],
            registry=self.registry,
        )
        self.closes = Counter(
            "live_closes",
            "Closed websocket connections by close code (1006: dropped)",
            ["code"],
            registry=self.registry,
        )
        self.updates_read = Counter(
            "live_updates_read", "Updates read from the Redis streams", ["channel"], registry=self.registry
        )
        self.updates_dropped = Counter(
            "live_updates_dropped",
            "Updates read but sent to nobody, because the failpoint live.drop_updates was set",
            ["channel"],
            registry=self.registry,
        )
        self.updates_sent = Counter(
            "live_updates_sent", "Update frames sent to clients (live and replayed)", registry=self.registry
        )
        self.queue_overflows = Counter(
            "live_send_queue_overflows",
            "Clients closed 1008 because their send queue was full",
            registry=self.registry,
        )
        self.resumes = Counter(
            "live_resumes",
            "Resume requests by result (ok: replayed, reset: fresh snapshot)",
            ["result"],
            registry=self.registry,
        )
        self.stream_gaps = Counter(
            "live_stream_gaps",
            "Sequence gaps or resets seen in the Redis streams",
            ["channel"],
            registry=self.registry,
        )
        self.redis_errors = Counter(
            "live_redis_errors", "Redis errors in the stream reader", registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
