"""`outage act`: the operator toolbox a responder may use during a drill (or any time).

Each action does one thing a runbook asks for, on the real stack, and says what it did; during a
drill it is also recorded in the drill's timeline. Raw tools (`docker`, `rabbitmqctl`,
`redis-cli`) remain allowed: container starts and stops are read from Docker's event stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from faults.broker import peers_running_at_shutdown, request_force_boot, wait_listening
from harness.stack.protocol import APP_SERVICES, BROKER_NODES, SERVICES, Stack

PUBLISHERS = ("api", "relay")  # the services that publish to the broker
LISTEN_TIMEOUT_S = 180


class ActionError(ValueError):
    """The action was called wrongly (unknown name, wrong arguments)."""


@dataclass(frozen=True)
class Action:
    name: str
    usage: str
    description: str
    perform: Callable[[Stack, list[str], dict[str, str]], str]
    arguments: int


def _one_of(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ActionError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _broker_start(stack: Stack, args: list[str], baseline: dict[str, str]) -> str:
    node = _one_of(args[0], BROKER_NODES, "node")
    stack.start(node)
    return f"started {node}"


def _broker_stop(stack: Stack, args: list[str], baseline: dict[str, str]) -> str:
    node = _one_of(args[0], BROKER_NODES, "node")
    stack.stop(node, 30)
    return f"stopped {node}"


def _broker_force_boot(stack: Stack, args: list[str], baseline: dict[str, str]) -> str:
    node = _one_of(args[0], BROKER_NODES, "node")
    request_force_boot(stack, node)
    return f"{node} will force_boot at its next start (it boots without waiting for its peers)"


def _broker_wait(stack: Stack, args: list[str], baseline: dict[str, str]) -> str:
    node = _one_of(args[0], BROKER_NODES, "node")
    wait_listening(stack, node, LISTEN_TIMEOUT_S)
    return f"{node} accepts AMQP connections"


def _shutdown_peers(stack: Stack, args: list[str], baseline: dict[str, str]) -> str:
    lines = []
    for node in BROKER_NODES:
        peers = peers_running_at_shutdown(stack, node)
        lines.append(f"{node}: {', '.join(peers) if peers else 'unknown (no record)'}")
    return "nodes running when each node shut down: " + "; ".join(lines)


def _restart(stack: Stack, args: list[str], baseline: dict[str, str]) -> str:
    service = _one_of(args[0], SERVICES, "service")
    stack.restart(service)
    return f"restarted {service}"


def _rollback(stack: Stack, args: list[str], baseline: dict[str, str]) -> str:
    service = _one_of(args[0], APP_SERVICES, "service")
    stack.configure(baseline, [service])
    return f"{service} redeployed with the release it ran at the start of the drill"


def _scale_jobs(stack: Stack, args: list[str], baseline: dict[str, str]) -> str:
    try:
        runners = int(args[0])
    except ValueError:
        raise ActionError(f"the number of job runners must be a whole number; got {args[0]!r}") from None
    if not 1 <= runners <= 32:
        raise ActionError(f"job runners must be within 1..32; got {runners}")
    stack.configure({**baseline, "JOB_RUNNERS": str(runners)}, ["worker"])
    return f"worker redeployed with {runners} job runners"


def _firewall(stack: Stack, args: list[str], baseline: dict[str, str]) -> str:
    for service in PUBLISHERS:
        stack.disconnect(service)
    return f"publishers cut off the network: {', '.join(PUBLISHERS)}"


def _unfirewall(stack: Stack, args: list[str], baseline: dict[str, str]) -> str:
    for service in PUBLISHERS:
        stack.connect(service)
    return f"publishers reconnected: {', '.join(PUBLISHERS)}"


ACTIONS: dict[str, Action] = {
    action.name: action
    for action in (
        Action("broker-start", "NODE", "start a stopped broker node (rabbit1..3)", _broker_start, 1),
        Action("broker-stop", "NODE", "stop a broker node in order (30 s grace)", _broker_stop, 1),
        Action(
            "broker-force-boot",
            "NODE",
            "mark a stopped node to run `rabbitmqctl force_boot` at its next start (risky)",
            _broker_force_boot,
            1,
        ),
        Action("broker-wait", "NODE", "wait until a broker node accepts AMQP connections", _broker_wait, 1),
        Action(
            "broker-shutdown-peers",
            "",
            "read from each node's data which nodes were running when it shut down",
            _shutdown_peers,
            0,
        ),
        Action("restart", "SERVICE", "restart one service's container", _restart, 1),
        Action(
            "rollback",
            "SERVICE",
            "redeploy an app service (api, relay, worker, live) with the release it ran when the drill began",
            _rollback,
            1,
        ),
        Action("scale-jobs", "N", "redeploy the worker with N background-job runners", _scale_jobs, 1),
        Action("firewall-publishers", "", "cut the publishers (api, relay) off the network", _firewall, 0),
        Action("unfirewall-publishers", "", "reconnect the publishers (api, relay)", _unfirewall, 0),
    )
}


def perform(stack: Stack, name: str, args: list[str], baseline: dict[str, str]) -> str:
    """Do one action; raises ActionError for a wrong call, anything else when the stack refused."""
    action = ACTIONS.get(name)
    if action is None:
        raise ActionError(f"no action {name!r}; `outage act --list` lists them")
    if len(args) != action.arguments:
        raise ActionError(f"usage: outage act {name} {action.usage}".rstrip())
    return action.perform(stack, args, baseline)
