"""A container's CPU and memory limits, read from its own cgroup (v1 or v2) from inside it.

The kernel's files are the truth: Docker's record of a container says 0 for "no limit", which its
update API cannot write back, while the value the kernel shows can be written back exactly.
"""

from __future__ import annotations

from harness.stack.protocol import Limits

NO_LIMIT = -1

# Prints the cgroup version, then its files in a fixed order.
READ_SCRIPT = (
    "if [ -f /sys/fs/cgroup/cpu.max ]; then echo v2; "
    "cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.swap.max; "
    "else echo v1; cd /sys/fs/cgroup; "
    "cat cpu/cpu.cfs_period_us cpu/cpu.cfs_quota_us "
    "memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes; fi"
)


class CgroupReadError(RuntimeError):
    """The container's cgroup files could not be read or parsed."""


def _number(text: str) -> int:
    return NO_LIMIT if text == "max" else int(text)


def parse_limits(output: str) -> Limits:
    """The limits in READ_SCRIPT's output.

    cgroup v2 keeps swap apart (memory.swap.max) while Docker counts memory + swap together."""
    words = output.split()
    try:
        if words[0] == "v1":
            period, quota, memory, memory_swap = (int(w) for w in words[1:5])
            return Limits(period, quota, memory, memory_swap)
        if words[0] == "v2":
            quota, period = _number(words[1]), int(words[2])
            memory, swap = _number(words[3]), _number(words[4])
            both = NO_LIMIT if NO_LIMIT in (memory, swap) else memory + swap
            return Limits(period, quota, memory, both)
    except (IndexError, ValueError):
        pass
    raise CgroupReadError(f"unexpected cgroup files: {output.strip()[:300]!r}")
