"""Watching the broker as its dashboard would: queue depths, memory alarms, blocked publishers.

Samples the management API once a second and keeps the figures an incident report needs: the peak
depth of each queue, when a memory alarm first fired, and which client connections the broker
blocked (named by the service they come from).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from harness import control_http
from harness.engine.waiting import pause
from harness.stack.credentials import broker_login
from harness.stack.protocol import Endpoints

BLOCKED_STATES = ("blocked", "blocking")


@dataclass
class BrokerWatch:
    endpoints: Endpoints
    clock: Callable[[], float]  # the run's clock (seconds since it began)
    service_of_ip: dict[str, str] = field(default_factory=dict)
    on_alarm: Callable[[float, list[str]], None] | None = None
    on_blocked: Callable[[float, str], None] | None = None
    # Each poll as one compact row (queued events, each node's memory and watermark, alarms), for a
    # run's record.
    on_sample: Callable[[dict[str, object]], None] | None = None
    peak_depth: dict[str, int] = field(default_factory=dict)
    peak_memory_bytes: dict[str, int] = field(default_factory=dict)
    alarm_at: float | None = None  # run time of the first memory alarm
    alarm_cleared_at: float | None = None
    alarms: set[str] = field(default_factory=set)
    blocked: dict[str, float] = field(default_factory=dict)  # connection -> run time first seen blocked
    depth_series: list[tuple[float, int]] = field(default_factory=list)  # (run time, total events queued)

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=2.0, auth=broker_login()) as client:
            while not stop.is_set():
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    await self._sample(client)
                await pause(stop, 1.0)

    def memory_used(self) -> dict[str, int]:
        """Each node's memory now, as its alarm measures it."""
        for url in self.endpoints.management.values():
            try:
                nodes = control_http.get(f"{url}/api/nodes", auth=broker_login(), timeout=5).json()
            except (httpx.HTTPError, ValueError):
                continue
            return {n["name"]: int(n.get("mem_used") or 0) for n in nodes}
        raise ConnectionError("no broker node answered")

    async def queue_depths(self) -> dict[str, int]:
        """Messages in each queue now (ready and unacknowledged)."""
        async with httpx.AsyncClient(timeout=5.0, auth=broker_login()) as client:
            for url in self.endpoints.management.values():
                try:
                    queues = (await client.get(f"{url}/api/queues")).json()
                except (httpx.HTTPError, ValueError):
                    continue
                return {q["name"]: int(q.get("messages") or 0) for q in queues}
        raise ConnectionError("no broker node answered")

    async def _sample(self, client: httpx.AsyncClient) -> None:
        for url in self.endpoints.management.values():
            try:
                queues = (await client.get(f"{url}/api/queues")).json()
                nodes = (await client.get(f"{url}/api/nodes")).json()
                connections = (await client.get(f"{url}/api/connections")).json()
            except httpx.HTTPError:
                continue
            self._record(queues, nodes, connections)
            return

    def _record(self, queues: list[dict], nodes: list[dict], connections: list[dict]) -> None:
        t = self.clock()
        total = 0
        for queue in queues:
            depth = int(queue.get("messages") or 0)
            total += depth
            self.peak_depth[queue["name"]] = max(self.peak_depth.get(queue["name"], 0), depth)
        self.depth_series.append((round(t, 1), total))
        alarmed = []
        for node in nodes:
            used = int(node.get("mem_used") or 0)
            self.peak_memory_bytes[node["name"]] = max(self.peak_memory_bytes.get(node["name"], 0), used)
            if node.get("mem_alarm"):
                alarmed.append(node["name"])
        if alarmed and self.alarm_at is None:
            self.alarm_at = t
            if self.on_alarm:
                self.on_alarm(t, alarmed)
        if not alarmed and self.alarm_at is not None and self.alarm_cleared_at is None:
            self.alarm_cleared_at = t
        self.alarms.update(alarmed)
        if self.on_sample:
            self.on_sample(
                {
                    "t": round(t, 1),
                    "queued": total,
                    "memory": {n["name"]: int(n.get("mem_used") or 0) for n in nodes},
                    "watermark": {n["name"]: int(n.get("mem_limit") or 0) for n in nodes},
                    "alarm": alarmed,
                }
            )
        for connection in connections:
            if connection.get("state") not in BLOCKED_STATES:
                continue
            name = self.service_of_ip.get(str(connection.get("peer_host")), str(connection.get("peer_host")))
            label = f"{name} ({connection.get('name')})"
            if label not in self.blocked:
                self.blocked[label] = t
                if self.on_blocked:
                    self.on_blocked(t, label)

    def alarm_active(self) -> bool:
        return self.alarm_at is not None and self.alarm_cleared_at is None

    def blocked_services(self) -> list[str]:
        return sorted({label.split(" (")[0] for label in self.blocked})

    def summary(self) -> dict[str, object]:
        return {
            "peak_queue_depth": dict(self.peak_depth),
            "peak_queue_depth_total": max((d for _, d in self.depth_series), default=0),
            "peak_broker_memory_mb": {n: round(b / 2**20, 1) for n, b in self.peak_memory_bytes.items()},
            "memory_alarm_at_s": self.alarm_at,
            "memory_alarm_cleared_at_s": self.alarm_cleared_at,
            "memory_alarm_nodes": sorted(self.alarms),
            "blocked_connections": {label: at for label, at in sorted(self.blocked.items())},
            "blocked_services": self.blocked_services(),
        }
