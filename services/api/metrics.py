"""Prometheus metrics of the api, in a registry of its own (one per app)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.events import Event

UNROUTED = "unrouted"  # requests refused before routing (body too large) or matching no route


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "api_requests_total",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "api_request_duration_seconds",
            "Time to answer a request",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.errors = Counter(
            "api_errors_total", "Error answers by error code", ["code"], registry=self.registry
        )
        self.events = Counter(
            "api_events_emitted_total", "Events handed on", ["type", "via"], registry=self.registry
        )
        self.outbox_length = Gauge(
            "api_outbox_length", "Events in the Redis outbox, read at scrape time", registry=self.registry
        )
        self.outbox_unreadable = Counter(
            "api_outbox_length_read_failures_total",
            "Scrapes that could not read the outbox length",
            registry=self.registry,
        )

    def count_error(self, code: str) -> None:
        self.errors.labels(code).inc()

    def count_events(self, events: Iterable[Event], via: str) -> None:
        by_type: dict[str, int] = {}
        for event in events:
            by_type[event.type] = by_type.get(event.type, 0) + 1
        for event_type, count in by_type.items():
            self.events.labels(event_type, via).inc(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware: counts every answer by route template and status, and times it."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees when the app dies before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", UNROUTED)
            self._metrics.requests.labels(scope["method"], route, str(status)).inc()
            self._metrics.latency.labels(route).observe(time.perf_counter() - started)
