"""Container faults: kill, stop, pause, restart, and cutting a service off the network."""

from __future__ import annotations

from dataclasses import dataclass

from faults.base import Fault
from harness.stack.protocol import Stack


def ensure_running(stack: Stack, service: str) -> None:
    state = stack.status(run_waiting_checks=False).services[service].state
    if state == "paused":
        stack.unpause(service)
    elif state != "running":
        stack.start(service)


@dataclass
class KillContainer(Fault):
    """SIGKILL: the process dies with no chance to clean up (a crash, an OOM kill)."""

    kind = "kill"
    service: str
    signal: str = "SIGKILL"

    def inject(self, stack: Stack) -> None:
        stack.kill(self.service, self.signal)

    def revert(self, stack: Stack) -> None:
        ensure_running(stack, self.service)


@dataclass
class StopContainer(Fault):
    """SIGTERM then SIGKILL after a grace period: an orderly shutdown."""

    kind = "stop"
    service: str
    grace_s: float = 10

    def inject(self, stack: Stack) -> None:
        stack.stop(self.service, self.grace_s)

    def revert(self, stack: Stack) -> None:
        ensure_running(stack, self.service)


@dataclass
class PauseContainer(Fault):
    """SIGSTOP for every process: connections stay open but nothing answers (a hung node)."""

    kind = "pause"
    service: str

    def inject(self, stack: Stack) -> None:
        stack.pause(self.service)

    def revert(self, stack: Stack) -> None:
        ensure_running(stack, self.service)


@dataclass
class RestartContainer(Fault):
    """An orderly restart; reverting only makes sure it is running again."""

    kind = "restart"
    service: str

    def inject(self, stack: Stack) -> None:
        stack.restart(self.service)

    def revert(self, stack: Stack) -> None:
        ensure_running(stack, self.service)


@dataclass
class Partition(Fault):
    """Cut a service off from every other service (network disconnect); reconnect restores its aliases."""

    kind = "partition"
    service: str

    def inject(self, stack: Stack) -> None:
        stack.disconnect(self.service)

    def revert(self, stack: Stack) -> None:
        stack.connect(self.service)
