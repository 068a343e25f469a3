"""The stack's host ports: published on 127.0.0.1, chosen once, below the kernel's ephemeral range.

Every client socket on the machine (a load's connections, a thousand live tabs, another stack's
harness) takes its local port from the ephemeral range, and a listener cannot bind a port that any
socket holds, even as a client. A host port Docker picks from that range is lost the moment a
container is recreated or a broker node restarted while some client holds it ("bind: address
already in use"). So each published port is chosen below the range, when its service is first
created, and kept for the life of the stack: a recreated or restarted service comes back on it.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Mapping
from pathlib import Path

from harness.stack.protocol import BROKER_NODES

# The compose variable that pins each published port (recipes/docker-compose.yml): (service, port inside).
PORT_VARIABLES: dict[str, tuple[str, int]] = {
    "OUTAGE_API_PORT": ("gateway", 8000),
    "OUTAGE_LIVE_PORT": ("gateway", 8765),
    "OUTAGE_RELAY_PORT": ("relay", 9100),
    "OUTAGE_WORKER_PORT": ("worker", 9100),
    "OUTAGE_REDIS_PORT": ("redis", 6379),
    **{f"OUTAGE_{node.upper()}_AMQP_PORT": (node, 5672) for node in BROKER_NODES},
    **{f"OUTAGE_{node.upper()}_MANAGEMENT_PORT": (node, 15672) for node in BROKER_NODES},
}
LOWEST_PORT = 10_000  # below: ports that well-known services on a developer's machine often hold
_EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LINUX_DEFAULT_EPHEMERAL = (32768, 60999)


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for client sockets' local ports."""
    try:
        low, high = (int(part) for part in _EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return _LINUX_DEFAULT_EPHEMERAL
    return low, high


def port_free(port: int) -> bool:
    """Whether a listener could bind 127.0.0.1:`port` now, as Docker's proxy would (SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def choose_ports(kept: Mapping[str, str], rng: random.Random | None = None) -> dict[str, str]:
    """Every port variable: the port a running or stopped container already has (`kept`), else a
    free one outside the ephemeral range (below it where there is room), different from the others."""
    rng = rng or random.Random()
    low, high = ephemeral_range()
    outside = [r for r in (range(LOWEST_PORT, low), range(high + 1, 65536)) if len(r) > 100]
    candidates = outside or [range(LOWEST_PORT, 65536)]  # a kernel that leaves nothing outside
    chosen = dict(kept)
    for variable in PORT_VARIABLES:
        if variable in chosen:
            continue
        for _ in range(1000):
            port = rng.choice(rng.choices(candidates, weights=[len(r) for r in candidates])[0])
            if str(port) not in chosen.values() and port_free(port):
                chosen[variable] = str(port)
                break
        else:
            raise RuntimeError(f"no free host port outside the ephemeral range for {variable}")
    return chosen
