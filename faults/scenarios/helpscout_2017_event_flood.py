"""Help Scout, July 2017: one action floods the shared event queues and takes every service down.

The root cause is replayed for real: an agent runs the api's bulk action over a view of
100,000+ tickets (300,000+ in the full-size bench), which emits one event per ticket through the
same code path real traffic uses. Ordinary customer messages (open loop) and live-update clients
keep going all through, so the run shows whether normal traffic suffers.

The broker runs with a memory watermark sized for a small machine: an absolute limit of the node's
memory at injection plus WATERMARK_HEADROOM_MB. Quorum queues hold what is queued (and, until the
write-ahead log rolls over, what passed through) in memory, so a flood that is not held back trips
the alarm, and a memory alarm blocks every publisher in the cluster.

- vulnerable: the api publishes straight to the broker (OUTBOX=off) and bulk events share the
  ordinary queue (BULK_ISOLATION=off): nothing limits the flood.
- hardened: bulk events go to their own outbox lane; the relay publishes them after the ordinary
  events, 100 to a message, onto the bounded quorum queue events.bulk.batches (reject-publish +
  confirms); refused batches wait in the deferred stream, so the producer slows instead of
  dropping anything, and the worker applies each batch in one Redis round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from faults import base as fault_base
from faults.broker_memory import MemoryWatermark
from faults.containers import Partition
from harness.checks.check import Check
from harness.checks.latency import summarize
from harness.engine.runner import Run
from harness.engine.scenario import Drill, Scenario, Timing
from harness.observe.broker_watch import BrokerWatch
from harness.record.history import OK
from harness.stack import credentials
from services.common import keys
from services.live.client import LiveClient

TEST_FLOOD_TICKETS = 100_000
# The small machine's spare memory above what the broker uses at rest. Measured at test size on
# 2 cores: the batched bulk lane peaks about 1 MiB above rest; the unbounded flood (24,000-66,000
# events queued on the shared queue) 25-35 MiB. At 40 MiB the flood never tripped the alarm.
WATERMARK_HEADROOM_MB = 20
REST_SAMPLES = 5  # memory at rest: the highest of a few samples, so a garbage-collection dip does not count
API_P99_LIMIT_S = 0.5
LIVE_P99_LIMIT_S = 5.0
DRAIN_LIMIT_S = 600.0  # the postmortem: every email and event processed within ten minutes
LIVE_CLIENTS = 3
FIREWALL_MAX_S = 60.0  # the postmortem's 12 minutes, scaled to the drill
ALARM_HOLD_S = 10.0  # once the alarm is up, on-call takes this long to act: the blocked traffic shows
PUBLISHERS = ("api", "relay")  # the services that feed the event queues


class EventFlood(Scenario):
    id = "helpscout-2017-event-flood"
    title = "A bulk action floods the shared event queues; the broker blocks every publisher"
    source = "Help Scout incident report, 2017-07-10: Connection Errors (event queue flood)"
    drill = Drill(
        briefing=(
            "Just after noon the web app, both public APIs and mail start failing. Nearly every service "
            "publishes to the shared event queues. An agent has just run a bulk action on a very large "
            "view. The broker runs on a small machine with a memory watermark sized for it."
        ),
        symptoms=(
            "customer message posts time out or answer 5xx; the uptime check may still pass",
            "the canary message stops making it end to end",
            "the broker's events queue depth jumps by hundreds of thousands within seconds",
            "a broker memory alarm is raised; the management UI shows connections 'blocked'",
            "live updates (view counts) stop arriving in agents' tabs",
        ),
        hints=(
            "Which single request put that many events on the queue, and which path did they take?",
            "A memory alarm on one node blocks publishers on every node: who else publishes there?",
            "Does a bulk event travel on the same queue, and the same publisher, as a customer message?",
        ),
        runbook=(
            "Confirm the memory alarm and the blocked connections (rabbitmqctl status, management UI).",
            "Cut the broker off from its publishers (the api and the relay) so it can return to health "
            "while the worker drains the backlog.",
            "Once the alarm has cleared, reconnect and restart every service that feeds the event queues.",
            "Let the backlog drain; check that every bulk update and every customer message was processed.",
            "Afterwards: give bulk actions their own bounded, lower-priority path with backpressure.",
        ),
    )
    profile_settings = {
        # Both profiles: the bulk action may run for many seconds; no request deadline cuts it off.
        "hardened": {"API_REQUEST_DEADLINE_S": "0"},
        "vulnerable": {"OUTBOX": "off", "BULK_ISOLATION": "off", "API_REQUEST_DEADLINE_S": "0"},
    }

    def __init__(self, timing: Timing | None = None, flood_tickets: int = TEST_FLOOD_TICKETS) -> None:
        super().__init__(timing)
        self.flood_tickets = flood_tickets
        self.view = ""
        self.view_tickets: set[int] = set()
        self.watch: BrokerWatch | None = None
        self._watch_stop = asyncio.Event()
        self._watch_task: asyncio.Task[None] | None = None
        self._bulk_task: asyncio.Task[None] | None = None
        self.bulk_result: dict[str, Any] = {}
        self.flood_started_at: float | None = None  # wall clock
        self.flood_ended_at: float | None = None
        self.bulk_drain: dict[str, Any] = {}
        self.live_updates: list[tuple[str, float]] = []  # (message id, received at)
        self.runbook_applied = False

    def default_timing(self) -> Timing:
        return Timing(steady_s=5, outage_s=60, after_recovery_s=3, drain_timeout_s=90, message_rate=20)

    # -- setup ---------------------------------------------------------------------------------------

    async def prepare(self, run: Run) -> None:
        endpoints = await run.call(run.stack.endpoints)
        self.view = f"flood-{run.seed}-{int(time.time())}"
        admin = {"Authorization": f"Bearer {credentials.admin_token()}"}
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=endpoints.api, headers=admin, timeout=600) as client:
            reply = await client.post(f"/views/{self.view}/seed", json={"tickets": self.flood_tickets})
            reply.raise_for_status()
        client_redis = aioredis.from_url(endpoints.redis, decode_responses=True)
        try:
            self.view_tickets = {int(t) for t in await client_redis.smembers(keys.view_tickets(self.view))}
        finally:
            await client_redis.aclose()
        run.timeline.add(
            "note",
            f"seeded view {self.view} with {len(self.view_tickets)} tickets "
            f"in {time.monotonic() - started:.1f} s",
        )
        self.watch = BrokerWatch(
            endpoints,
            run.timeline.elapsed,
            service_of_ip=await run.call(_service_ips, run.stack),
            on_alarm=lambda t, nodes: run.symptom(
                f"broker memory alarm raised on {', '.join(nodes)}: publishers blocked cluster-wide",
                nodes=nodes,
            ),
            on_blocked=lambda t, label: run.symptom(f"broker blocked connection {label}", connection=label),
        )
        self._watch_task = asyncio.create_task(self.watch.run(self._watch_stop))
        run.add_load(lambda stop: self._live_clients(run, endpoints.live, stop))

    # -- the flood -----------------------------------------------------------------------------------

    async def inject(self, run: Run) -> None:
        assert self.watch is not None
        used: dict[str, int] = {}
        for _ in range(REST_SAMPLES):
            for node, now in (await run.call(self.watch.memory_used)).items():
                used[node] = max(used.get(node, 0), now)
            await run.sleep(1)
        watermark = max(used.values()) + WATERMARK_HEADROOM_MB * 2**20
        run.metrics["broker_memory_at_inject_mb"] = {n: round(b / 2**20, 1) for n, b in used.items()}
        run.metrics["memory_watermark_bytes"] = watermark
        await run.inject(
            MemoryWatermark(watermark),
            f"broker memory watermark set to {watermark / 2**20:.0f} MiB "
            f"(memory at rest + {WATERMARK_HEADROOM_MB} MiB: a small machine)",
        )
        endpoints = await run.call(run.stack.endpoints)
        self.flood_started_at = time.time()
        self._bulk_task = asyncio.create_task(self._bulk_action(run, endpoints.api))
        run.timeline.add(
            "fault", f"bulk action 'close' on view {self.view} ({len(self.view_tickets)} tickets)"
        )

    async def _bulk_action(self, run: Run, api: str) -> None:
        op = run.history.invoke("bulk-agent", "bulk_action", self.view, tickets=len(self.view_tickets))
        headers = {"Authorization": f"Bearer {credentials.agent_token('bulk-agent')}"}
        started = time.monotonic()
        try:
            async with httpx.AsyncClient(base_url=api, headers=headers, timeout=600) as client:
                reply = await client.post(f"/views/{self.view}/bulk", json={"action": "close"})
        except httpx.HTTPError as exc:
            self.bulk_result = {"outcome": "info", "error": f"{type(exc).__name__}: {exc}"}
            op.info(self.bulk_result["error"])
        else:
            if reply.status_code == 202:
                self.bulk_result = {"outcome": "ok", "events": int(reply.json()["events"])}
                op.ok(events=self.bulk_result["events"])
            else:
                self.bulk_result = {
                    "outcome": "info",
                    "error": f"HTTP {reply.status_code} {reply.text[:200]}",
                }
                op.info(self.bulk_result["error"])
        self.bulk_result["seconds"] = round(time.monotonic() - started, 3)
        run.timeline.add("note", f"bulk action answered: {self.bulk_result}")

    async def during_outage(self, run: Run) -> None:
        """The flood lasts until the bulk request is answered, or the outage budget runs out."""
        assert self._bulk_task is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._bulk_task), self.timing.outage_s)
        # Long enough after the last event for normal traffic to show whether it suffers.
        await run.sleep(5)
        assert self.watch is not None
        if self.watch.alarm_at is not None:
            await run.sleep(max(0.0, self.watch.alarm_at + ALARM_HOLD_S - run.timeline.elapsed()))
        self.flood_ended_at = time.time()

    # -- the runbook ---------------------------------------------------------------------------------

    async def recover(self, run: Run) -> None:
        assert self.watch is not None
        if self.watch.alarm_at is not None or self.watch.blocked:
            await self._firewall_and_restart(run)
        else:
            run.action(
                "no broker alarm and no blocked publisher: no intervention; watch the bulk backlog drain"
            )
        run.mark_recovered("publishers serving again; bulk backlog draining")
        await self._wait_for_bulk_drain(run)
        if self._bulk_task is not None and not self._bulk_task.done():
            self._bulk_task.cancel()
            await asyncio.gather(self._bulk_task, return_exceptions=True)
        self._watch_stop.set()
        if self._watch_task is not None:
            await self._watch_task

    async def _firewall_and_restart(self, run: Run) -> None:
        assert self.watch is not None
        self.runbook_applied = True
        run.action("cut the broker off from its publishers (api, relay) while the backlog drains")
        # Only the firewall is lifted by the runbook: the small machine's watermark stays.
        firewall = []
        try:
            for service in PUBLISHERS:
                partition = Partition(service)
                firewall.append(
                    (partition, await run.call(fault_base.apply, partition, run.stack, run.ledger))
                )
            deadline = time.monotonic() + FIREWALL_MAX_S
            while self.watch.alarm_active() and time.monotonic() < deadline:
                await run.sleep(1)
        finally:
            for partition, entry in reversed(firewall):
                await run.call(fault_base.revert, partition, run.stack, run.ledger, entry)
        run.action(
            "alarm cleared; firewall removed"
            if not self.watch.alarm_active()
            else f"alarm still up after {FIREWALL_MAX_S:.0f} s; firewall removed anyway"
        )
        run.action("restart every service that feeds the event queues")
        for service in PUBLISHERS:
            await run.call(run.stack.restart, service)
        await run.call(run.stack.wait_healthy, 180)

    async def _wait_for_bulk_drain(self, run: Run) -> None:
        """Until every bulk event the api emitted was applied, progress stalls, or the drain limit."""
        flood_age = time.time() - (self.flood_started_at or time.time())
        deadline = time.monotonic() + max(DRAIN_LIMIT_S - flood_age, 60)
        last_count, last_progress = -1, time.monotonic()
        while time.monotonic() < deadline:
            assert run.observer is not None
            try:
                await run.observer.read_available()
            except RedisError as exc:  # a slow read on a busy machine: try again next second
                run.timeline.add("note", f"reading effects failed, retrying: {type(exc).__name__}")
            # The observer's running count is cheap; the exact per-ticket scan runs once, at the end.
            applied, wanted = run.observer.counts["bulk_applied"], len(self.view_tickets)
            if applied >= wanted and len(self._applied_tickets(run)) >= wanted:
                break
            if applied != last_count:
                last_count, last_progress = applied, time.monotonic()
            elif (
                time.monotonic() - last_progress > 30
                and self._bulk_task is not None
                and self._bulk_task.done()
            ):
                run.timeline.add("note", f"bulk drain stalled at {applied} applied")
                break
            await run.sleep(1)
        times = sorted(self._bulk_times(run))
        applied = self._applied_tickets(run)
        first, last = (times[0], times[-1]) if times else (None, None)
        self.bulk_drain = {
            "bulk_applied": len(applied),
            "drain_time_s": round(last - self.flood_started_at, 1)
            if last and self.flood_started_at
            else None,
            "drain_rate_eps": round(len(times) / (last - first), 1) if times and last > first else None,
        }
        run.timeline.add("note", f"bulk drain: {self.bulk_drain}")

    # -- live updates --------------------------------------------------------------------------------

    async def _live_clients(self, run: Run, live_url: str, stop: asyncio.Event) -> None:
        def on_update(channel: str, _seq: int, data: dict[str, Any], received_at: float) -> None:
            if channel == "views" and data.get("message_id"):
                self.live_updates.append((str(data["message_id"]), received_at))

        clients = [
            LiveClient(
                live_url, credentials.agent_token(f"flood-watcher-{n}"), on_update=on_update, name=f"w{n}"
            )
            for n in range(LIVE_CLIENTS)
        ]
        for client in clients:
            client.start()
        await stop.wait()
        await asyncio.gather(*(client.stop() for client in clients), return_exceptions=True)

    # -- checks --------------------------------------------------------------------------------------

    def checks(self, run: Run) -> list[Check]:
        assert self.watch is not None
        start = self.flood_started_at or 0.0
        end = self.flood_ended_at or time.time()
        api = _message_posts(run, start, end)
        live = self._live_latency(run, start, end)
        bulk_expected = self.bulk_result.get("events")
        bulk_applied = self.bulk_drain.get("bulk_applied", 0)
        drain_time = self.bulk_drain.get("drain_time_s")
        run.metrics.update(
            {
                "flood_tickets": len(self.view_tickets),
                "bulk_action": self.bulk_result,
                **self.watch.summary(),
                "api_message_posts_during_flood": api,
                "live_update_latency_during_flood_s": live,
                **self.bulk_drain,
                "runbook_applied": self.runbook_applied,
            }
        )
        if self.watch.alarm_at is not None and run.injected_at is not None:
            run.metrics["memory_alarm_after_inject_s"] = round(self.watch.alarm_at - run.injected_at, 1)
        blocked = self.watch.blocked_services()
        return [
            Check(
                "normal_traffic_p99_during_flood",
                api["p99"] is not None and api["p99"] <= API_P99_LIMIT_S,
                f"message posts p50 {api['p50']} s, p99 {api['p99']} s over {api['count']}",
                f"p99 <= {API_P99_LIMIT_S} s",
            ),
            Check(
                "normal_traffic_errors_during_flood",
                api["errors"] == 0,
                f"{api['errors']} failed or timed out of {api['count']}",
                "0",
            ),
            Check(
                "no_publisher_blocked",
                self.watch.alarm_at is None and not blocked,
                f"memory alarm on {sorted(self.watch.alarms) or 'no node'}; blocked: {blocked or 'none'}",
                "no memory alarm, no blocked connection",
            ),
            Check(
                "live_updates_flowing",
                live["p99"] is not None and live["p99"] <= LIVE_P99_LIMIT_S,
                f"view-count updates during the flood: {live}",
                f"p99 <= {LIVE_P99_LIMIT_S} s",
            ),
            Check(
                "bulk_events_all_applied",
                bulk_expected is not None and bulk_applied >= bulk_expected == len(self.view_tickets),
                f"bulk action {self.bulk_result.get('outcome')}: {bulk_expected} events emitted, "
                f"{bulk_applied} of {len(self.view_tickets)} tickets updated",
                "every ticket of the view updated (lost 0)",
            ),
            Check(
                "bulk_backlog_drained",
                drain_time is not None
                and drain_time <= DRAIN_LIMIT_S
                and bulk_applied >= len(self.view_tickets),
                f"drained in {drain_time} s at {self.bulk_drain.get('drain_rate_eps')} events/s",
                f"<= {DRAIN_LIMIT_S:.0f} s",
            ),
        ]

    def _applied_tickets(self, run: Run) -> set[int]:
        columns = run.history.observation_columns("bulk_applied")
        found = set()
        for meta in columns.meta:
            if meta and meta.get("ticket_id") is not None:
                ticket = int(meta["ticket_id"])
                if ticket in self.view_tickets:
                    found.add(ticket)
        return found

    def _bulk_times(self, run: Run) -> list[float]:
        columns = run.history.observation_columns("bulk_applied")
        return [at for at, meta in zip(columns.at, columns.meta, strict=True) if meta]

    def _live_latency(self, run: Run, start: float, end: float) -> dict[str, Any]:
        columns = run.history.op_columns()
        posted = {
            key: wall
            for key, kind, wall in zip(columns.key, columns.kind, columns.invoke_wall, strict=True)
            if kind == "post_message" and key and start <= wall <= end
        }
        latencies = [received - posted[key] for key, received in self.live_updates if key in posted]
        summary = summarize(latencies)
        return {
            "messages_posted": len(posted),
            "updates_seen": summary.count,
            "p50": _round(summary.p50),
            "p99": _round(summary.p99) if summary.count >= max(1, len(posted) // 2) else None,
        }


def _message_posts(run: Run, start: float, end: float) -> dict[str, Any]:
    """Latency of every message post sent during the flood; errors and time-outs count at full length."""
    columns = run.history.op_columns()
    latencies, errors = [], 0
    for i, kind in enumerate(columns.kind):
        if kind != "post_message" or columns.process[i].startswith("canary"):
            continue
        if not start <= columns.invoke_wall[i] <= end:
            continue
        outcome = columns.outcome[i]
        if columns.complete_mono_ns[i]:
            latencies.append((columns.complete_mono_ns[i] - columns.invoke_mono_ns[i]) / 1e9)
        if outcome != OK:  # failed, timed out, or never answered
            errors += 1
    summary = summarize(latencies)
    return {"count": len(latencies), "errors": errors, "p50": _round(summary.p50), "p99": _round(summary.p99)}


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _service_ips(stack: Any) -> dict[str, str]:
    """Container IP -> service name, so a blocked connection names the service it comes from."""
    found: dict[str, str] = {}
    container_of = getattr(stack, "container", None)
    if container_of is None:
        return found
    for service in ("api", "relay", "worker", "live"):
        with contextlib.suppress(Exception):
            networks = container_of(service).attrs["NetworkSettings"]["Networks"]
            for network in networks.values():
                if network.get("IPAddress"):
                    found[network["IPAddress"]] = service
    return found
