"""The RabbitMQ cluster as a whole: taking every node down, reading what the nodes say about
their own restart, and bringing the cluster back the way its runbook says.

A RabbitMQ node remembers which peers were running when it stopped (the file
`nodes_running_at_shutdown` in its data). On its next boot it waits for those peers' tables
("Waiting for Mnesia tables") and gives up when none answers: only the node that stopped last
may boot alone. Start the nodes in the wrong order, or kill them all at once, and none comes
back on its own; that is the stuck state these faults reproduce and `restart_cluster` undoes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from faults.base import Fault
from faults.containers import KillContainer, StopContainer
from harness.engine.waiting import WaitTimeout, wait_until_sync
from harness.stack.protocol import BROKER_NODES, Stack, StackStatus

DATA_DIR = "/var/lib/rabbitmq"
# Read by the image's entrypoint at every boot: "<ms> <retries>" overrides the table wait.
TABLE_WAIT_FILE = "table-wait-override"
# Read by the entrypoint too: the node runs `rabbitmqctl force_boot` before it starts.
FORCE_BOOT_FILE = "force-boot-requested"

# What a booting node logs while it waits for its peers, and when it gives up.
WAITING = re.compile(r"Waiting for Mnesia tables for (\d+) ms, (\d+) retries left")
GAVE_UP = re.compile(r"Application mnesia exited with reason: stopped|BOOT FAILED")
SHUT_DOWN_WHILE_OTHERS_RAN = "This cluster node was shut down while other nodes were still running"


class ClusterRestartError(RuntimeError):
    """The cluster did not come back as one cluster of three."""


def _node_name(node: str) -> str:
    return f"rabbit@{node}"


def _running(stack: Stack, node: str) -> bool:
    return stack.status(run_waiting_checks=False).services[node].state == "running"


def on_every_node(action: Callable[[str], object], nodes: Sequence[str] = BROKER_NODES) -> None:
    """Do the same thing to several nodes side by side: each is a Docker call that mostly waits
    (an exec, a stop), and three in a row cost a recovery seconds. Once every node's call has
    ended, raises the first error (`Executor.map` would cancel the calls not yet started)."""
    if not nodes:
        return
    with ThreadPoolExecutor(len(nodes)) as pool:  # leaving it waits for every call
        calls = [pool.submit(action, node) for node in nodes]
    for call in calls:
        call.result()


def _write_node_file(stack: Stack, node: str, name: str, content: str) -> None:
    """Write a file into a node's data volume, whether the node runs or not."""
    if _running(stack, node):
        code, output = stack.exec(node, ["sh", "-c", f"printf '%s' \"$0\" > {DATA_DIR}/{name}", content])
        if code != 0:
            raise RuntimeError(f"writing {name} on {node} failed: {output.strip()}")
    else:
        stack.write_volume_file(node, name, content)


def _read_node_file(stack: Stack, node: str, relative_path: str) -> str | None:
    """A file of the node's data volume, or None when it does not exist."""
    if _running(stack, node):
        code, output = stack.exec(node, ["cat", f"{DATA_DIR}/{relative_path}"])
        return output if code == 0 else None
    return stack.read_volume_file(node, relative_path)


def peers_running_at_shutdown(stack: Stack, node: str) -> list[str] | None:
    """The nodes this node saw running when it last stopped (itself included), from its own data."""
    text = _read_node_file(stack, node, f"mnesia/{_node_name(node)}/nodes_running_at_shutdown")
    if text is None:
        return None
    return sorted(name.split("@", 1)[1] for name in re.findall(r"rabbit@[\w.-]+", text))


def last_node_to_stop(stack: Stack, nodes: Sequence[str] = BROKER_NODES) -> str | None:
    """The node that saw no peer running when it stopped: the one that may boot first. None when
    every node believes others outlived it (they were all killed at once)."""
    for node in nodes:
        if peers_running_at_shutdown(stack, node) == [node]:
            return node
    return None


@dataclass(frozen=True)
class BootWatch:
    """What a node's log says about its boot."""

    waiting: str | None = None  # the first "Waiting for Mnesia tables" line
    gave_up: bool = False
    listening: bool = False  # its AMQP listener is open
    exited: bool = False  # its container stopped


def watch_boot(stack: Stack, node: str, since: float) -> BootWatch:
    """Read a node's boot from its own log (since a unix time) and its AMQP port."""
    log = stack.logs(node, since=since, tail=2000)
    waiting = WAITING.search(log)
    exited = not _running(stack, node)
    gave_up = bool(GAVE_UP.search(log)) or (exited and waiting is not None)
    return BootWatch(
        waiting=waiting.group(0) if waiting else None,
        gave_up=gave_up,
        listening=not exited and amqp_listening(stack, node),
        exited=exited,
    )


def amqp_listening(stack: Stack, node: str) -> bool:
    """The node has booted far enough to accept clients (what the compose healthcheck tests)."""
    code, _ = stack.exec(node, ["bash", "-c", "</dev/tcp/127.0.0.1/5672"], timeout=10)
    return code == 0


def diagnose(stack: Stack, node: str) -> str:
    """`rabbitmq-diagnostics check_running` on the node: what the broker says about itself."""
    if not _running(stack, node):
        state = stack.status(run_waiting_checks=False).services[node]
        return f"container {state.state} (exit code {state.exit_code})"
    code, output = stack.exec(node, ["rabbitmq-diagnostics", "-q", "check_running"], timeout=60)
    return f"exit {code}: {' '.join(output.split())[:300]}"


def wait_listening(stack: Stack, node: str, timeout: float) -> None:
    def listening() -> bool:
        if not _running(stack, node):
            raise ClusterRestartError(f"{node} exited while booting: {stack.logs(node, tail=15)[-1500:]}")
        return amqp_listening(stack, node)

    try:
        wait_until_sync(listening, timeout=timeout, what=f"{node} opens its AMQP listener")
    except WaitTimeout as exc:
        raise ClusterRestartError(str(exc)) from None


def wait_one_cluster(stack: Stack, timeout: float) -> None:
    def whole() -> StackStatus | None:
        status = stack.status(run_waiting_checks=False)
        nodes_up = all(status.services[n].state == "running" for n in BROKER_NODES)
        return status if nodes_up and status.cluster.one_cluster else None

    try:
        wait_until_sync(whole, timeout=timeout, what="one cluster of three running nodes")
    except WaitTimeout:
        running = stack.status(run_waiting_checks=False).cluster.running_nodes
        raise ClusterRestartError(f"no cluster of three after {timeout:.0f} s: {running}") from None


def _started_at(stack: Stack, node: str) -> float:
    started = stack.status(run_waiting_checks=False).services[node].started_at
    return started if started is not None else time.time() - 600


def request_force_boot(stack: Stack, node: str) -> None:
    """Leave the marker that makes the stopped node run `rabbitmqctl force_boot` before it boots."""
    if _running(stack, node):
        raise ClusterRestartError(f"force_boot needs {node} stopped")
    _write_node_file(stack, node, FORCE_BOOT_FILE, "1")


def restart_cluster(
    stack: Stack, timeout: float = 300, say: Callable[[str], None] = lambda _: None
) -> list[str]:
    """The runbook: the node that stopped last first (force_boot one when none did), then the rest.

    Nodes that gave up are stopped first. Does nothing when the cluster is whole; returns the
    actions taken.
    """
    status = stack.status(run_waiting_checks=False)
    running = [n for n in BROKER_NODES if status.services[n].state == "running"]
    if len(running) == len(BROKER_NODES) and status.cluster.one_cluster:
        return []
    actions: list[str] = []
    healthy = [n for n in running if amqp_listening(stack, n)]
    booting = [n for n in running if n not in healthy]
    # A booting node joins a serving peer on its own, unless it already gave up; with no serving
    # peer it can only be waiting for nodes that are down: stop it and start again in order.
    stuck = [n for n in booting if not healthy or watch_boot(stack, n, _started_at(stack, n)).gave_up]
    for node in stuck:
        say(f"stopping {node}: it is up but not serving (stuck waiting for its peers)")
        actions.append(f"stopped stuck {node}")
    on_every_node(lambda node: stack.stop(node, 10), stuck)
    down = [n for n in BROKER_NODES if n not in healthy and (n not in booting or n in stuck)]
    if not healthy:
        first = last_node_to_stop(stack, down)
        if first is None:
            first = down[0]
            say(f"no node stopped last (they died together): force_boot {first}")
            request_force_boot(stack, first)
            actions.append(f"force_boot {first}")
        say(f"starting {first} first: it stopped last")
        stack.start(first)
        actions.append(f"started {first}")
        wait_listening(stack, first, timeout)
        down.remove(first)
    for node in down:
        say(f"starting {node}")
        stack.start(node)
        actions.append(f"started {node}")
    wait_one_cluster(stack, timeout)
    return actions


@dataclass
class TableWaitOverride(Fault):
    """Shorten how long booting nodes wait for their peers' tables (RabbitMQ: 30000 ms x 10).

    Written into every node's data, read by the entrypoint at each boot, so the stuck state shows
    within seconds instead of minutes. Reverting clears it; running nodes keep their current
    configuration until they next restart.
    """

    kind = "broker_table_wait"
    wait_ms: int = 2000
    retries: int = 2

    def inject(self, stack: Stack) -> None:
        on_every_node(
            lambda node: _write_node_file(stack, node, TABLE_WAIT_FILE, f"{self.wait_ms} {self.retries}")
        )

    def revert(self, stack: Stack) -> None:
        # Empty: the environment's values.
        on_every_node(lambda node: _write_node_file(stack, node, TABLE_WAIT_FILE, ""))


@dataclass
class StopBrokerNode(StopContainer):
    """An orderly stop of one node; reverting restarts the whole cluster in the runbook's order."""

    kind = "broker_stop"

    def revert(self, stack: Stack) -> None:
        restart_cluster(stack)


@dataclass
class KillBrokerNode(KillContainer):
    """SIGKILL of one node; reverting restarts the whole cluster in the runbook's order."""

    kind = "broker_kill"

    def revert(self, stack: Stack) -> None:
        restart_cluster(stack)


@dataclass
class PowerCutBrokers(Fault):
    """Every node dies at the same instant, as when the rack loses power: each is frozen first
    (cgroup freezer, side by side), then SIGKILLed. Killed one after another, even 0.1 s apart, a
    node lives long enough to see a peer die and to record that it outlived it; frozen, none
    records anything, so each still believes the others were running. Reverting restarts the
    cluster in the runbook's order."""

    kind = "broker_power_cut"
    nodes: tuple[str, ...] = BROKER_NODES

    def inject(self, stack: Stack) -> None:
        on_every_node(stack.pause, self.nodes)
        on_every_node(stack.kill, self.nodes)

    def revert(self, stack: Stack) -> None:
        restart_cluster(stack)
