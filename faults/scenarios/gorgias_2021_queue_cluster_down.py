"""Gorgias, May 2021: the region's message-queue cluster had every node down, and none would
restart; the API and the web app went down with it for an hour.

The root cause is RabbitMQ's restart rule. A node remembers which peers were running when it
stopped and, on boot, waits for their tables ("Waiting for Mnesia tables") before giving up;
only the node that stopped last may boot alone. Two ways into the trap, chosen by the seed:

- odd seeds, `stop-one-by-one`: the nodes are stopped one after the other (rabbit1, rabbit2,
  rabbit3), then brought back in ordinal order, as an orchestrator does: rabbit1 and rabbit2
  first, while the node they wait for, rabbit3, stays down.
- even seeds, `killed-at-once`: all three are SIGKILLed together, then rabbit1 is started alone:
  every node believes the others outlived it, so none may boot first.

The started nodes wait and give up; the harness reads that from the brokers themselves (their
logs, `rabbitmq-diagnostics`, container state). The table wait is shortened for the run from
RabbitMQ's 30000 ms x 10 retries to 2000 ms x 2 (RabbitMQ 3.10 waits in two rounds, so a node
gives up about 8 s after it reaches its database boot step) through the broker's configuration
(faults/broker.py `TableWaitOverride`). Recovery is the runbook: start the node that stopped last
first, or `force_boot` one when none did, then the others; the backlog is then replayed.

The vulnerable api publishes each event straight to the broker without confirms, so it answers
503 for as long as no node serves, and it loses messages it had already acknowledged: while the
nodes go down one by one, its publishes still reach channels on nodes that are shutting down or
left in a minority (pause_minority, quorum queues without a quorum); those nodes drop them and
nobody is told. The hardened api only writes to Redis (message and event in its outbox); the
relay publishes with confirms after the runbook, and the idempotent worker applies each event once.
"""

from __future__ import annotations

import asyncio
import time

from faults.broker import (
    SHUT_DOWN_WHILE_OTHERS_RAN,
    KillBrokerNode,
    StopBrokerNode,
    TableWaitOverride,
    diagnose,
    last_node_to_stop,
    peers_running_at_shutdown,
    request_force_boot,
    wait_listening,
    wait_one_cluster,
    watch_boot,
)
from harness.checks.check import Check
from harness.checks.replay import availability, replay_after
from harness.engine.runner import HarnessError, Run
from harness.engine.scenario import Drill, Scenario, Timing
from harness.stack.protocol import BROKER_NODES

STOP_ONE_BY_ONE = "stop-one-by-one"
KILLED_AT_ONCE = "killed-at-once"

TABLE_WAIT_MS = 2000
TABLE_WAIT_RETRIES = 2
STUCK_TIMEOUT_S = 300  # a loaded machine boots RabbitMQ slowly
CLUSTER_TIMEOUT_S = 300
MAX_REPLAY_S = 60.0
MIN_ACCEPTED_RATIO = 0.99


def variant_for_seed(seed: int) -> str:
    return STOP_ONE_BY_ONE if seed % 2 else KILLED_AT_ONCE


class QueueClusterDown(Scenario):
    id = "gorgias-2021-queue-cluster-down"
    title = "The message-queue cluster is down on every node and cannot restart"
    source = (
        "Gorgias postmortem, 2021-05-17: the queue cluster stuck with all nodes down "
        "(incidents/gorgias-2021-05-queue-cluster-down.txt)"
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
    # Message intake may queue for a while when three broker nodes boot on two cores beside it;
    # shedding interactive reads fast is another incident's mitigation, not this one's.
    _INTAKE = {"API_QUEUE_TIMEOUT_S": "3", "API_REQUEST_DEADLINE_S": "5"}
    profile_settings = {
        "hardened": _INTAKE,
        # The api publishes straight to the broker, fire-and-forget; no outbox, no replay, and a
        # worker that applies a redelivered event twice.
        "vulnerable": {**_INTAKE, "OUTBOX": "off", "PUBLISHER_CONFIRMS": "off", "IDEMPOTENT_CONSUMER": "off"},
    }

    def default_timing(self) -> Timing:
        # outage_s: how long the cluster stays stuck before the runbook starts (the postmortem's
        # hour is outage_s=3600); the stops and the stuck boots come on top.
        return Timing(steady_s=5, outage_s=30, after_recovery_s=5, drain_timeout_s=60, message_rate=20)

    # -- the incident -----------------------------------------------------------------------------

    async def inject(self, run: Run) -> None:
        variant = variant_for_seed(run.seed)
        run.metrics["variant"] = variant
        run.metrics["table_wait"] = {
            "ms": TABLE_WAIT_MS,
            "retries": TABLE_WAIT_RETRIES,
            "rabbitmq_default": {"ms": 30000, "retries": 10},
        }
        await run.inject(
            TableWaitOverride(TABLE_WAIT_MS, TABLE_WAIT_RETRIES),
            f"broker table wait shortened to {TABLE_WAIT_MS} ms x {TABLE_WAIT_RETRIES} retries "
            "(RabbitMQ default 30000 ms x 10) so a stuck node gives up within seconds",
        )
        self._down_at = time.time()
        if variant == STOP_ONE_BY_ONE:
            for node in BROKER_NODES:
                await run.inject(StopBrokerNode(node, grace_s=30), f"{node} stopped (orderly shutdown)")
        else:
            await asyncio.gather(
                *(run.inject(KillBrokerNode(node), f"{node} killed (SIGKILL)") for node in BROKER_NODES)
            )

    async def during_outage(self, run: Run) -> None:
        variant = run.metrics["variant"]
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
        self._stuck = await self._observe_stuck(run, started, started_at)
        remaining = self.timing.outage_s - (time.time() - self._down_at)
        if remaining > 0:
            await run.sleep(remaining)

    async def _observe_stuck(self, run: Run, nodes: list[str], since: float) -> dict[str, str]:
        """Wait until every started node waited for its peers and gave up, as its own log says."""
        deadline = time.monotonic() + STUCK_TIMEOUT_S
        waiting: dict[str, str] = {}
        gave_up: dict[str, str] = {}
        while len(gave_up) < len(nodes):
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"no stuck state within {STUCK_TIMEOUT_S} s: waiting={waiting}, gave up={gave_up}"
                )
            for node in nodes:
                if node in gave_up:
                    continue
                watch = await run.call(watch_boot, run.stack, node, since)
                if watch.listening:
                    raise HarnessError(f"{node} booted without its peers: the stuck state was not reproduced")
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
                if watch.gave_up and node in waiting:
                    log = await run.call(run.stack.logs, node, since, 4000)
                    told = SHUT_DOWN_WHILE_OTHERS_RAN in log
                    gave_up[node] = "gave up waiting for its peers' tables" + (
                        f" ('{SHUT_DOWN_WHILE_OTHERS_RAN}')" if told else ""
                    )
                    run.symptom(f"{node} {gave_up[node]}; the cluster stays down", node=node)
            await run.sleep(2)
        return gave_up

    # -- the runbook ------------------------------------------------------------------------------

    async def recover(self, run: Run) -> None:
        stack = run.stack
        status = await run.call(stack.status)
        for node in BROKER_NODES:
            if status.services[node].state == "running":
                run.action(f"stop {node}: it is stuck, not serving")
                await run.call(stack.stop, node, 10)
        first = await run.call(last_node_to_stop, stack)
        if first is not None:
            run.action(f"{first} is the node that stopped last (nodes_running_at_shutdown lists only itself)")
        else:
            first = BROKER_NODES[0]
            run.action(f"no node stopped last (they died together): rabbitmqctl force_boot on {first}")
            await run.call(request_force_boot, stack, first)
        run.metrics["first_node_started"] = first
        run.action(f"start {first} first")
        await run.call(stack.start, first)
        await run.call(wait_listening, stack, first, CLUSTER_TIMEOUT_S)
        self._broker_back_at = time.time()
        run.action(f"{first} accepts connections: the broker serves again")
        for node in BROKER_NODES:
            if node != first:
                run.action(f"start {node}")
                await run.call(stack.start, node)
        await run.call(wait_one_cluster, stack, CLUSTER_TIMEOUT_S)
        self._healthy_at = time.time()
        run.metrics["outage_s"] = round(self._healthy_at - self._down_at, 3)
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

    # -- the verdict ------------------------------------------------------------------------------

    def checks(self, run: Run) -> list[Check]:
        # In a drill people apply the runbook: the cluster is back when the steady state held again.
        healthy_at = getattr(self, "_healthy_at", None) or run.recovered_at_wall
        down_at = getattr(self, "_down_at", None)
        stuck = getattr(self, "_stuck", {})
        checks = [
            Check(
                "broker.stuck_state",
                bool(stuck),
                "; ".join(f"{node} {what}" for node, what in stuck.items()) or "not observed",
                "restarted nodes wait for their peers' tables and give up",
            )
        ]
        if healthy_at is None or down_at is None:
            return checks
        during = availability(run.history, down_at, healthy_at, "post_message")
        run.metrics["posts_during_outage"] = {"attempted": during.attempted, "acked": during.acked}
        ratio = during.ratio
        checks.append(
            Check(
                "api.accepted_during_outage",
                ratio is not None and ratio >= MIN_ACCEPTED_RATIO,
                f"{during.acked}/{during.attempted} acknowledged"
                + (f" ({ratio:.1%})" if ratio is not None else ""),
                f">= {MIN_ACCEPTED_RATIO:.0%} of message posts acknowledged while the cluster was down",
            )
        )
        replay = replay_after(run.history, healthy_at, "post_message")
        run.timings["replay_s"] = replay.replay_s
        run.metrics["backlog_at_recovery"] = replay.backlog
        run.metrics["backlog_replayed"] = replay.replayed
        run.metrics["replay_rate_per_s"] = replay.rate_per_s
        # The relay starts replaying as soon as one node serves and the queues have a quorum, before
        # the cluster is whole: the backlog and the replay counted from the first node back.
        broker_back_at = getattr(self, "_broker_back_at", None)
        if broker_back_at is not None:
            early = replay_after(run.history, broker_back_at, "post_message")
            run.metrics["backlog_when_first_node_serves"] = early.backlog
            run.metrics["replay_from_first_node_s"] = early.replay_s
            run.metrics["replay_rate_from_first_node_per_s"] = early.rate_per_s
        checks.append(
            Check(
                "messages.replay",
                replay.complete and replay.replay_s is not None and replay.replay_s <= MAX_REPLAY_S,
                f"{replay.replayed}/{replay.backlog} replayed"
                + (f" in {replay.replay_s} s" if replay.replay_s is not None else ", the rest never"),
                f"the whole backlog processed within {MAX_REPLAY_S:g} s of the cluster being back",
            )
        )
        return checks
