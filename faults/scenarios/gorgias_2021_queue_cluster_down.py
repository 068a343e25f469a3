"""Gorgias, May 2021: the region's message-queue cluster had every node down, and none would
restart; the API and the web app went down with it for an hour.

The root cause is RabbitMQ's restart rule. A node remembers which peers were running when it
stopped and, on boot, waits for their tables ("Waiting for Mnesia tables") before giving up;
only the node that stopped last may boot alone. Two ways into the trap, chosen by the seed:

- odd seeds, `stop-one-by-one`: the nodes are stopped one after the other (rabbit1, rabbit2,
  rabbit3), then brought back in ordinal order, as an orchestrator does: rabbit1 and rabbit2
  first, while the node they wait for, rabbit3, stays down.
- even seeds, `killed-at-once`: all three die at the same instant (frozen, then SIGKILLed: a power
  cut, `PowerCutBrokers`), then rabbit1 is started alone:
  every node believes the others outlived it, so none may boot first.

The started nodes wait and give up; the harness reads that from the brokers themselves (their
logs, `rabbitmq-diagnostics`, container state). The table wait is shortened for the run from
RabbitMQ's 30000 ms x 10 retries to 2000 ms x 2 (RabbitMQ 3.10 waits in two rounds, so a node
gives up about 8 s after it reaches its database boot step) through the broker's configuration
(faults/broker.py `TableWaitOverride`). Recovery is the runbook: start the node that stopped last
first, or `force_boot` one when none did, then the others; the backlog is then replayed.

The vulnerable api publishes each event straight to the broker from the request, and keeps
retrying a failed publish for PUBLISH_RETRY_S (10 s) before it answers 503. With no node serving,
every message request holds its gateway slot that long: the gateway's 32 slots fill and every
other call waits behind them, reads included, so the api is down for everyone (the postmortem:
"no API calls could be responded to", agents could not log in): those are its symptoms. It can
also lose acknowledged messages, each named by its path (`lost_by_path`): fire-and-forget
publishes that reached a node while it shut down (acknowledged at once, then lost: 9 of 212 in
one quiet run, none in another), or a message stored whose publish failed and whose retry with
the same idempotency key got 202. Whether one is in flight at that instant is timing, and the
postmortem promised "no message will be lost": a loss fails the run, but is not a symptom. The
hardened api only writes to Redis (message and event in its outbox); the relay publishes with
confirms once the runbook is done, and the idempotent worker applies each event once.
See gorgias_2021_queue_cluster_down.md for the postmortem's facts and what is reproduced.
"""

from __future__ import annotations

import asyncio
import time

from faults.broker import (
    SHUT_DOWN_WHILE_OTHERS_RAN,
    PowerCutBrokers,
    StopBrokerNode,
    TableWaitOverride,
    diagnose,
    last_node_to_stop,
    on_every_node,
    peers_running_at_shutdown,
    request_force_boot,
    wait_listening,
    wait_one_cluster,
    watch_boot,
)
from harness.checks.checker import lost_paths
from harness.checks.expect import AtLeast, Equals, Expect, Measured, figure
from harness.checks.replay import availability, replay_after
from harness.engine.runner import Run
from harness.engine.scenario import Drill, Scenario, Timing
from harness.record.history import OK
from harness.record.record import Record
from harness.stack import credentials
from harness.stack.protocol import BROKER_NODES
from harness.workloads.load import TicketTraffic
from harness.workloads.reads import READ_KIND, ReadLoad

STOP_ONE_BY_ONE = "stop-one-by-one"
KILLED_AT_ONCE = "killed-at-once"

TABLE_WAIT_MS = 2000
TABLE_WAIT_RETRIES = 2
STUCK_TIMEOUT_S = 300  # a loaded machine boots RabbitMQ slowly
CLUSTER_TIMEOUT_S = 300
MAX_REPLAY_S = 60.0
MIN_ACCEPTED_RATIO = 0.99
READ_RATE = 5.0  # ticket reads per second, open loop
BOOT_FAILED_EARLY = "failed to boot before it waited for its peers (BOOT FAILED)"


def variant_for_seed(seed: int) -> str:
    return STOP_ONE_BY_ONE if seed % 2 else KILLED_AT_ONCE


class QueueClusterDown(Scenario):
    id = "gorgias-2021-queue-cluster-down"
    title = "The message-queue cluster is down on every node and cannot restart"
    source = (
        "Gorgias postmortem, 2021-05-17: the queue cluster stuck with all nodes down "
        "(faults/scenarios/gorgias_2021_queue_cluster_down.md)"
    )
    drill = Drill(
        briefing=(
            "All three RabbitMQ nodes of the region went down. The orchestrator is bringing them back, "
            "but the cluster does not come up. Customers and agents keep posting messages. Get the queue "
            "cluster back, and make sure every message the api accepted is processed once."
        ),
        symptoms=(
            "the api answers 503 broker_unavailable (vulnerable) or the outbox grows (hardened)",
            "no broker node answers on 5672 or on the management port",
            "a restarted node logs 'Waiting for Mnesia tables ... retries left', then exits",
            "its BOOT FAILED text: 'This cluster node was shut down while other nodes were still running'",
            "the canary stops arriving; the worker's queue is unreachable",
        ),
        hints=(
            "Which node stopped last? Each node's data holds nodes_running_at_shutdown.",
            "A node that was not the last to stop waits for its peers; starting it again changes nothing.",
            "If every node was killed at once, none knows it was last: rabbitmqctl force_boot one node.",
            "What did the api tell clients while the broker was gone, and was any of it lost?",
        ),
        runbook=(
            "Stop the nodes that are stuck waiting for their peers.",
            "Read nodes_running_at_shutdown on each node; the one that lists only itself stopped last.",
            "Start that node first and wait until it accepts connections.",
            "If none stopped last (all died together): `rabbitmqctl force_boot` on one node, then start it.",
            "Start the other nodes; `rabbitmq-diagnostics cluster_status` must show three running nodes.",
            "Watch the relay replay the outbox, and the queue drain; check no accepted message is missing.",
        ),
    )
    message_budget = {"max_replay_s": MAX_REPLAY_S}
    expectations = (
        Expect(
            "broker.stuck_state",
            "stuck_state",
            Equals(True),
            why="the postmortem's root cause: restarted nodes wait for their peers' tables and give up",
        ),
        Expect(
            "api.accepted_during_outage",
            "accepted_during_outage",
            AtLeast(100 * MIN_ACCEPTED_RATIO),
            why="the product's promise: a message is accepted while the broker is away (the outbox); "
            "1% room for requests shed while the api itself restarts beside three booting nodes",
        ),
        Expect(
            "api.reads_during_outage",
            "reads_during_outage",
            AtLeast(100 * MIN_ACCEPTED_RATIO),
            why="the product's promise: reading a ticket needs no message queue (the postmortem: no API "
            "call could be answered and agents could not log in); the same 1% room",
        ),
    )
    vulnerable_symptoms = ("api.accepted_during_outage", "api.reads_during_outage")
    message_retry_unknown = True  # customers' integrations retry a time-out or a 5xx, same key
    # Message intake may queue for a while when three broker nodes boot on two cores beside it;
    # shedding interactive reads fast is another incident's mitigation, not this one's.
    _INTAKE = {"API_QUEUE_TIMEOUT_S": "3", "API_REQUEST_DEADLINE_S": "5"}
    profile_settings = {
        "hardened": _INTAKE,
        # The api publishes straight to the broker, fire-and-forget; no outbox, no replay, and a
        # worker that applies a redelivered event twice.
        "vulnerable": {**_INTAKE, "OUTBOX": "off", "PUBLISH_RETRY_S": "10", "IDEMPOTENT_CONSUMER": "off"},
    }

    def default_timing(self) -> Timing:
        # outage_s: how long the cluster stays stuck before the runbook starts (the postmortem's
        # hour is outage_s=3600); the stops and the stuck boots come on top.
        return Timing(steady_s=5, outage_s=30, after_recovery_s=5, drain_timeout_s=60, message_rate=20)

    async def prepare(self, run: Run) -> None:
        """Agents read tickets all along, as they do after logging in (each as themself)."""
        endpoints = await run.call(run.stack.endpoints)
        token = credentials.agent_token("reader")  # the readers' own logins replace it per request
        traffic = TicketTraffic(
            endpoints.api, token, run.history, run.rng, READ_RATE, run.tickets, self.client_timeout_s
        )
        run.add_load(ReadLoad(traffic).run)

    # -- the incident -----------------------------------------------------------------------------

    async def inject(self, run: Run) -> None:
        """Shorten the brokers' table wait, then take all three nodes down: stopped one by one (odd
        seeds) or killed at once (even seeds)."""
        variant = variant_for_seed(run.seed)
        await run.inject(
            TableWaitOverride(TABLE_WAIT_MS, TABLE_WAIT_RETRIES),
            f"broker table wait shortened to {TABLE_WAIT_MS} ms x {TABLE_WAIT_RETRIES} retries "
            "(RabbitMQ default 30000 ms x 10) so a stuck node gives up within seconds",
        )
        run.mark("brokers_down", f"the broker nodes go down: {variant}", variant=variant)
        self._down_at = time.time()
        if variant == STOP_ONE_BY_ONE:
            for node in BROKER_NODES:
                await run.inject(StopBrokerNode(node, grace_s=30), f"{node} stopped (orderly shutdown)")
        else:
            await run.inject(
                PowerCutBrokers(), f"{', '.join(BROKER_NODES)} frozen, then killed (SIGKILL): a power cut"
            )

    async def during_outage(self, run: Run) -> None:
        """The orchestrator starts the nodes in ordinal order; watch them wait for their peers and
        give up; the cluster stays down for outage_s."""
        variant = variant_for_seed(run.seed)
        for node in BROKER_NODES:
            peers = await run.call(peers_running_at_shutdown, run.stack, node)
            run.symptom(
                f"{node} saw running at its shutdown: {', '.join(peers or ['?'])}", node=node, peers=peers
            )
        # The orchestrator brings the nodes back in ordinal order: the wrong order.
        started = ["rabbit1", "rabbit2"] if variant == STOP_ONE_BY_ONE else ["rabbit1"]
        started_at = time.time()
        for node in started:
            await run.call(run.stack.start, node)
            run.timeline.add("fault", f"{node} started by the orchestrator (ordinal order)", node=node)
        await self._observe_stuck(run, started, started_at)
        remaining = self.timing.outage_s - (time.time() - self._down_at)
        if remaining > 0:
            await run.sleep(remaining)

    async def _observe_stuck(self, run: Run, nodes: list[str], since: float) -> None:
        """Watch every started node until it waited for its peers and gave up, as its own log says.

        Each node that gives up is marked `node_gave_up`; one that boots alone is marked
        `node_booted_alone`; the check on the stuck state reads those marks."""
        deadline = time.monotonic() + STUCK_TIMEOUT_S
        waiting: dict[str, str] = {}
        gave_up: set[str] = set()
        while len(gave_up) < len(nodes):
            if time.monotonic() > deadline:
                run.symptom(f"no stuck state within {STUCK_TIMEOUT_S} s: waiting={waiting}")
                return
            for node in nodes:
                if node in gave_up:
                    continue
                watch = await run.call(watch_boot, run.stack, node, since)
                if watch.listening:
                    run.mark("node_booted_alone", f"{node} booted without its peers", node=node)
                    return
                if watch.waiting and node not in waiting:
                    waiting[node] = watch.waiting
                    if len(waiting) == 1:
                        run.symptom(
                            f"first sign of the stuck state: {node} logs '{watch.waiting}'", node=node
                        )
                        diagnosis = await run.call(diagnose, run.stack, node)
                        run.symptom(f"rabbitmq-diagnostics check_running on {node}: {diagnosis}", node=node)
                    else:
                        run.symptom(f"{node} logs '{watch.waiting}'", node=node)
                if watch.gave_up and (node in waiting or watch.exited):
                    # Two nodes booting side by side can also fail before either waits (Mnesia's
                    # consistency check finds the other half-started): the node is down all the same.
                    log = await run.call(run.stack.logs, node, since, 4000)
                    told = SHUT_DOWN_WHILE_OTHERS_RAN in log
                    what = (
                        "gave up waiting for its peers' tables" if node in waiting else BOOT_FAILED_EARLY
                    ) + (f" ('{SHUT_DOWN_WHILE_OTHERS_RAN}')" if told else "")
                    gave_up.add(node)
                    run.mark("node_gave_up", f"{node} {what}; the cluster stays down", node=node, what=what)
            await run.sleep(2)

    # -- the runbook ------------------------------------------------------------------------------

    async def recover(self, run: Run) -> None:
        """The runbook: stop the stuck nodes, start the one that stopped last first (force_boot one if
        none did), then the others, until one cluster of three runs."""
        stack = run.stack
        status = await run.call(stack.status, run_waiting_checks=False)
        stuck = [node for node in BROKER_NODES if status.services[node].state == "running"]
        for node in stuck:
            run.action(f"stop {node}: it is stuck, not serving")
        await run.call(on_every_node, lambda node: stack.stop(node, 10), stuck)
        first = await run.call(last_node_to_stop, stack)
        if first is not None:
            run.action(f"{first} is the node that stopped last (nodes_running_at_shutdown lists only itself)")
        else:
            first = BROKER_NODES[0]
            run.action(f"no node stopped last (they died together): rabbitmqctl force_boot on {first}")
            await run.call(request_force_boot, stack, first)
        run.action(f"start {first} first", node=first)
        await run.call(stack.start, first)
        await run.call(wait_listening, stack, first, CLUSTER_TIMEOUT_S)
        run.mark("first_node_serves", f"{first} accepts connections: the broker serves again", node=first)
        for node in BROKER_NODES:
            if node != first:
                run.action(f"start {node}")
                await run.call(stack.start, node)
        await run.call(wait_one_cluster, stack, CLUSTER_TIMEOUT_S)
        self._healthy_at = time.time()
        run.mark("cluster_healthy", "one cluster of three running nodes")
        run.mark_recovered("cluster healthy again: one cluster of three running nodes")
        self._replay_watch = asyncio.create_task(self._watch_replay(run))

    async def _watch_replay(self, run: Run) -> None:
        """Say in the timeline when the backlog of the outage has been replayed."""
        deadline = time.monotonic() + MAX_REPLAY_S + self.timing.drain_timeout_s
        await asyncio.sleep(3)  # posts in flight at the recovery instant are acked by then
        while time.monotonic() < deadline:
            replay = replay_after(run.history, self._healthy_at, "post_message")
            if replay.complete:
                run.timeline.add(
                    "note",
                    f"replay finished: {replay.backlog} acknowledged messages processed "
                    f"{replay.replay_s} s after the cluster was back",
                )
                return
            await asyncio.sleep(1)

    # -- the figures the checks read (pure functions of the record) --------------------------------

    @figure()
    def stuck_state(self, record: Record) -> Measured:
        """Every node the orchestrator started waited for its peers and gave up; none booted alone."""
        gave_up = record.marks("node_gave_up")
        alone = record.marks("node_booted_alone")
        started = 2 if variant_for_seed(record.seed) == STOP_ONE_BY_ONE else 1
        detail = "; ".join(f"{e.data['node']} {e.data['what']}" for e in gave_up) or "not observed"
        if alone:
            detail += "; " + ", ".join(e.data["node"] for e in alone) + " booted without its peers"
        return Measured(len(gave_up) == started and not alone, detail)

    @figure("%")
    def accepted_during_outage(self, record: Record) -> Measured | None:
        """Share of message posts acknowledged between the brokers going down and the cluster back."""
        down_at, healthy_at = record.mark_at("brokers_down"), _cluster_back_at(record)
        if down_at is None or healthy_at is None:
            return None
        during = availability(record.history, down_at, healthy_at, "post_message")
        ratio = during.ratio
        return Measured(
            None if ratio is None else round(100 * ratio, 1),
            f"{during.acked}/{during.attempted} acknowledged",
        )

    @figure("%")
    def reads_during_outage(self, record: Record) -> Measured | None:
        """Share of ticket reads answered 200 between the brokers going down and the cluster back."""
        down_at, back_at = record.mark_at("brokers_down"), _cluster_back_at(record)
        if down_at is None or back_at is None:
            return None
        columns = record.history.op_columns()
        reads = [
            i
            for i, kind in enumerate(columns.kind)
            if kind == READ_KIND and down_at <= columns.invoke_wall[i] <= back_at
        ]
        answered = sum(1 for i in reads if columns.outcome[i] == OK)
        share = round(100 * answered / len(reads), 1) if reads else None
        return Measured(share, f"{answered}/{len(reads)} reads answered")

    @figure()
    def lost_by_path(self, record: Record) -> Measured:
        """Each acknowledged message never processed, by the path that lost it."""
        paths = lost_paths(record.history, self.message_op_kinds)
        detail = "; ".join(f"{count} {path}" for path, count in sorted(paths.items())) or "none lost"
        return Measured(sum(paths.values()), detail)

    @figure("s")
    def outage_s(self, record: Record) -> float | None:
        down_at, healthy_at = record.mark_at("brokers_down"), _cluster_back_at(record)
        return None if down_at is None or healthy_at is None else round(healthy_at - down_at, 3)

    @figure()
    def backlog_at_recovery(self, record: Record) -> int | None:
        healthy_at = _cluster_back_at(record)
        return (
            None if healthy_at is None else replay_after(record.history, healthy_at, "post_message").backlog
        )

    @figure()
    def backlog_when_first_node_serves(self, record: Record) -> int | None:
        """The relay replays as soon as one node serves and the queues have a quorum."""
        back_at = record.mark_at("first_node_serves")
        return None if back_at is None else replay_after(record.history, back_at, "post_message").backlog

    @figure("events/s")
    def replay_rate_from_first_node(self, record: Record) -> float | None:
        back_at = record.mark_at("first_node_serves")
        return None if back_at is None else replay_after(record.history, back_at, "post_message").rate_per_s


def _cluster_back_at(record: Record) -> float | None:
    """When the cluster served again: the runbook's mark, or in a drill (where people apply the
    runbook) the moment the steady state held again."""
    healthy_at = record.mark_at("cluster_healthy")
    if healthy_at is None and record.recovered is not None:
        healthy_at = record.recovered.at
    return healthy_at
