"""What the harness needs from a running stack, independent of how it runs.

Scenarios, faults and probes talk to a `Stack`; `ComposeStack` (harness/compose_stack.py) is the
single-host implementation. A Kubernetes backend would implement the same interface.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

SERVICES = ("rabbit1", "rabbit2", "rabbit3", "redis", "gateway", "api", "relay", "worker", "live")
BROKER_NODES = ("rabbit1", "rabbit2", "rabbit3")
APP_SERVICES = ("api", "relay", "worker", "live")


@dataclass(frozen=True)
class Endpoints:
    api: str  # through the gateway, which outlives the api's restarts
    live: str
    redis: str
    amqp: dict[str, str]  # broker node -> amqp://127.0.0.1:P
    management: dict[str, str]  # broker node -> http://127.0.0.1:P
    metrics: dict[str, str]  # relay/worker -> http://127.0.0.1:P

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class ServiceState:
    name: str
    state: str  # running, exited, paused, missing, ...
    health: str  # healthy, unhealthy, starting, none
    networks: tuple[str, ...] = ()
    exit_code: int | None = None  # of its last run, once it has exited
    started_at: float | None = None  # unix time its current (or last) run started

    @property
    def healthy(self) -> bool:
        return self.state == "running" and self.health in ("healthy", "none")


@dataclass(frozen=True)
class ClusterState:
    """RabbitMQ membership as the nodes themselves report it."""

    running_nodes: dict[str, list[str]]  # node -> the running cluster members it sees
    alarms: dict[str, list[str]] = field(default_factory=dict)  # node -> active resource alarms

    @property
    def one_cluster(self) -> bool:
        expected = sorted(f"rabbit@{node}" for node in BROKER_NODES)
        views = list(self.running_nodes.values())
        return len(views) == len(BROKER_NODES) and all(sorted(view) == expected for view in views)


@dataclass(frozen=True)
class StackStatus:
    project: str
    services: dict[str, ServiceState]
    cluster: ClusterState
    endpoints: Endpoints | None

    @property
    def healthy(self) -> bool:
        return all(s.healthy for s in self.services.values()) and self.cluster.one_cluster

    def problems(self) -> list[str]:
        found = [f"{s.name}: {s.state}/{s.health}" for s in self.services.values() if not s.healthy]
        if not self.cluster.one_cluster:
            found.append(f"rabbitmq: not one cluster of three ({self.cluster.running_nodes})")
        return found

    def as_dict(self) -> dict[str, object]:
        return {
            "project": self.project,
            "healthy": self.healthy,
            "problems": self.problems(),
            "services": {name: asdict(s) | {"healthy": s.healthy} for name, s in self.services.items()},
            "rabbitmq": {
                "one_cluster": self.cluster.one_cluster,
                "running_nodes": self.cluster.running_nodes,
                "alarms": self.cluster.alarms,
            },
            "endpoints": self.endpoints.as_dict() if self.endpoints else {},
        }


@dataclass(frozen=True)
class Limits:
    """A service's cgroup limits as the kernel holds them (-1: no CPU quota)."""

    cpu_period_us: int
    cpu_quota_us: int
    memory_bytes: int
    memory_swap_bytes: int  # memory + swap


class Stack(Protocol):
    """Control of the system under test: lifecycle, state, and the container-level levers faults pull."""

    project: str

    def up(self, env: Mapping[str, str] | None = None, build: bool = True, timeout: float = 300) -> None: ...
    def down(self, volumes: bool = False) -> None: ...
    def configure(self, env: Mapping[str, str], services: Sequence[str] = APP_SERVICES) -> None: ...
    @property
    def settings(self) -> Mapping[str, str]:
        """The settings the app services were last configured with here (empty: the defaults)."""
        ...

    def status(self, *, run_waiting_checks: bool = True) -> StackStatus: ...
    def endpoints(self) -> Endpoints: ...
    def wait_healthy(self, timeout: float = 180) -> StackStatus: ...

    def kill(self, service: str, signal: str = "SIGKILL") -> None: ...
    def stop(self, service: str, timeout: float = 10) -> None: ...
    def start(self, service: str) -> None: ...
    def restart(self, service: str) -> None: ...
    def pause(self, service: str) -> None: ...
    def unpause(self, service: str) -> None: ...
    def disconnect(self, service: str) -> None: ...
    def connect(self, service: str) -> None: ...
    def exec(self, service: str, command: Sequence[str], timeout: float = 30) -> tuple[int, str]: ...
    def logs(self, service: str, since: float | None = None, tail: int = 200) -> str: ...
    def read_volume_file(self, service: str, path: str) -> str | None:
        """A file of the service's data volume, running or not (None when it does not exist)."""
        ...

    def write_volume_file(self, service: str, path: str, content: str) -> None:
        """Write a file into the service's data volume, running or not."""
        ...

    # Levers for faults on the wire and on the host.
    def address(self, service: str) -> str:
        """The service's IP address on the project network."""
        ...

    def run_in_netns(self, service: str | None, script: str, timeout: float = 30) -> tuple[int, str]:
        """Run a shell script with the network tools (iptables, tc, ping, iperf3) and NET_ADMIN in
        the service's network namespace, or in a namespace of its own when `service` is None."""
        ...

    def limits(self, service: str) -> Limits: ...
    def set_limits(self, service: str, limits: Limits) -> None: ...
