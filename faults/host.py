"""Faults on the host a service runs on: its CPU throttled, its memory squeezed, its clock skewed.

CPU and memory are the container's cgroup limits, changed at run time through the Docker API's
container update (the service keeps running). The limits before are read from the kernel in
`preflight`, so the ledger holds them and the revert writes back exactly those values; each fault
restores only the limits it changed, so two of them on one service revert in any order.

The clock: Linux time namespaces shift only the monotonic and boot clocks, never the wall clock,
so the skew uses libfaketime (Debian's `faketime`, in the app image). The fault leaves the offset in
a file the app's entrypoint reads (compose/images/app/clock-offset.sh) and restarts the service.
Its limits: only the app services carry libfaketime (not Redis, RabbitMQ or HAProxy); it takes a
restart to apply and another to revert (in-flight work is interrupted, as in a deploy); it shifts
what programs ask libc for (time(), gettimeofday(), clock_gettime(CLOCK_REALTIME)), not a static
binary's or a raw system call's view; the monotonic clock is left true, so time-outs and back-offs
behave; processes started with `docker exec` see the true time; the offset is constant (no drift).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import asdict, dataclass, field, replace

from faults.base import Fault, FaultRefused
from faults.containers import ensure_running
from faults.network import require_service
from harness.stack.cgroup_limits import NO_LIMIT
from harness.stack.protocol import APP_SERVICES, Limits, Stack

CPU_PERIOD_US = 100_000
DOCKER_MIN_MEMORY = 6 * 1024 * 1024  # the smallest limit Docker accepts
CLOCK_OFFSET_FILE = "/etc/outage/clock-offset"  # read by the app image's entrypoint
LIBFAKETIME = "/usr/local/lib/libfaketime.so.1"


@dataclass
class LimitFault(Fault):
    """Changes some of a service's cgroup limits; reverting restores those it changed."""

    service: str
    previous: dict[str, int] = field(default_factory=dict)  # the Limits before, as the kernel had them

    @abstractmethod
    def changed(self, current: Limits) -> Limits:
        """The limits while the fault is in place."""

    @abstractmethod
    def restored(self, current: Limits) -> Limits:
        """`current` with the limits this fault changed set back to `previous`."""

    def preflight(self, stack: Stack) -> None:
        require_service(stack, self.service)
        if not self.previous:
            self.previous = asdict(stack.limits(self.service))

    def inject(self, stack: Stack) -> None:
        stack.set_limits(self.service, self.changed(stack.limits(self.service)))

    def revert(self, stack: Stack) -> None:
        try:
            current = stack.limits(self.service)
        except Exception:  # not running: write back every limit it had before
            current = Limits(**self.previous)
        stack.set_limits(self.service, self.restored(current))


@dataclass
class CpuThrottle(LimitFault):
    """The service gets at most `cpus` of a CPU (a CFS quota: 0.2 is 20 ms of every 100 ms)."""

    kind = "cpu_throttle"
    cpus: float = 0.2

    def preflight(self, stack: Stack) -> None:
        if self.cpus < 0.01:
            raise FaultRefused(f"cpus {self.cpus}: the smallest quota is 0.01 CPU")
        super().preflight(stack)

    def changed(self, current: Limits) -> Limits:
        return replace(current, cpu_period_us=CPU_PERIOD_US, cpu_quota_us=round(self.cpus * CPU_PERIOD_US))

    def restored(self, current: Limits) -> Limits:
        before = Limits(**self.previous)
        return replace(current, cpu_period_us=before.cpu_period_us, cpu_quota_us=before.cpu_quota_us)


@dataclass
class MemoryPressure(LimitFault):
    """The service's memory (and swap) is capped at `limit_mib`: the kernel reclaims its caches
    first, then the OOM killer ends the biggest process in the container when it cannot."""

    kind = "memory_pressure"
    limit_mib: int = 256

    def preflight(self, stack: Stack) -> None:
        if self.limit_mib * 1024 * 1024 < DOCKER_MIN_MEMORY:
            raise FaultRefused(f"limit_mib {self.limit_mib}: Docker accepts no memory limit under 6 MiB")
        super().preflight(stack)
        if Limits(**self.previous).memory_bytes == NO_LIMIT:
            raise FaultRefused(
                f"{self.service} has no memory limit on cgroup v2 ('max'), which Docker's update API "
                "cannot write back: the limit could not be reverted exactly"
            )

    def changed(self, current: Limits) -> Limits:
        limit = self.limit_mib * 1024 * 1024
        return replace(current, memory_bytes=limit, memory_swap_bytes=limit)

    def restored(self, current: Limits) -> Limits:
        before = Limits(**self.previous)
        return replace(current, memory_bytes=before.memory_bytes, memory_swap_bytes=before.memory_swap_bytes)


@dataclass
class ClockSkew(Fault):
    """The service's processes see the wall clock `offset_s` seconds off (ahead when positive),
    from a restart of the service on; reverting restarts it with the true time."""

    kind = "clock_skew"
    service: str
    offset_s: int = 300

    def preflight(self, stack: Stack) -> None:
        if self.service not in APP_SERVICES:
            raise FaultRefused(
                f"clock skew needs libfaketime in the service's image: only the app services "
                f"({', '.join(APP_SERVICES)}) have it, not {self.service!r}"
            )
        require_service(stack, self.service)
        code, _ = stack.exec(self.service, ["test", "-e", LIBFAKETIME])
        if code != 0:
            raise FaultRefused(
                f"{self.service}'s image has no {LIBFAKETIME}: rebuild the images (`outage build`)"
            )

    def inject(self, stack: Stack) -> None:
        write = f"printf '%+ds' {int(self.offset_s)} > {CLOCK_OFFSET_FILE}"
        code, output = stack.exec(self.service, ["sh", "-c", write])
        if code != 0:
            raise RuntimeError(f"writing the clock offset into {self.service} failed: {output[-300:]}")
        stack.restart(self.service)

    def revert(self, stack: Stack) -> None:
        ensure_running(stack, self.service)
        code, output = stack.exec(self.service, ["rm", "-f", CLOCK_OFFSET_FILE])
        if code != 0:
            raise RuntimeError(f"removing the clock offset from {self.service} failed: {output[-300:]}")
        stack.restart(self.service)
