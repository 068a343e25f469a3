"""Faults on the wire: a partition between services, packet loss, connection resets, a bandwidth
limit, latency and jitter.

Each is a real kernel mechanism applied inside the target service's network namespace by a
short-lived helper container that shares it (harness/stack/nettools.py), the way Pumba and Chaos
Mesh do it:

| fault | mechanism | kernel feature it needs |
| --- | --- | --- |
| LinkPartition | iptables DROP | netfilter (nf_tables or x_tables) |
| PacketLoss | iptables `-m statistic --mode random` DROP | xt_statistic |
| ConnectionResets | iptables REJECT `--reject-with tcp-reset` | nft reject / xt_REJECT |
| BandwidthLimit | tc token bucket filter on egress | sch_tbf |
| Latency | tc netem delay and jitter | sch_netem |

Rules live in a chain of their own (`OUTAGE-<tag>`), jumped to from INPUT and/or OUTPUT for
every interface but loopback (a service's own health check stays untouched); a queueing
discipline gets a handle of its own. The tag is chosen before the ledger is written, so reverting
(by the run, or by `outage heal` after a crash) removes exactly what this fault added and nothing
else. Before anything is ledgered, the same rule or qdisc is tried in a throwaway namespace: a
kernel without the feature refuses the fault with a message naming it, instead of half applying it.
"""

from __future__ import annotations

import shlex
import uuid
from abc import abstractmethod
from dataclasses import dataclass, field

from faults.base import Fault, FaultRefused
from harness.stack.protocol import SERVICES, Stack

# Which hooks a direction jumps from, seen from the target service.
DIRECTIONS = {"out": ("OUTPUT",), "in": ("INPUT",), "both": ("OUTPUT", "INPUT")}
_JUMP_MATCH = {"OUTPUT": "! -o lo", "INPUT": "! -i lo"}
_ADDRESS_MATCH = {"OUTPUT": "-d", "INPUT": "-s"}
_PROBE_ADDRESS = "192.0.2.1"  # TEST-NET-1: never a real peer


def new_tag() -> str:
    return uuid.uuid4().hex[:8]


def require_service(stack: Stack, service: str) -> None:
    """Refuse anything but a running service of this stack's own project."""
    if service not in SERVICES:
        raise FaultRefused(f"{service!r} is not a service of project {stack.project} ({', '.join(SERVICES)})")
    try:
        stack.address(service)
    except Exception as exc:  # not running, not in the project, not on its network
        raise FaultRefused(f"cannot reach the network of {service}: {exc}") from None


def _run(stack: Stack, service: str | None, script: str, what: str) -> str:
    code, output = stack.run_in_netns(service, script)
    if code != 0:
        raise RuntimeError(f"{what} failed (exit {code}): {output.strip()[-500:]}")
    return output


def leftovers(stack: Stack, service: str) -> list[str]:
    """What the wire faults could have left in the service's namespace: OUTAGE chains and rules,
    and root queueing disciplines other than the kernel's default (empty when nothing is left)."""
    script = (
        "iptables -S | grep -e OUTAGE- || true; "
        "for dev in $(ls /sys/class/net); do "
        "tc qdisc show dev $dev root | grep -v -e noqueue -e '^$' || true; done"
    )
    return [line for line in _run(stack, service, script, "listing rules").splitlines() if line.strip()]


@dataclass
class LinkFault(Fault):
    """iptables rules on the traffic between a service and its peers (all peers when none named).

    `direction` is seen from `service`: "out" acts on packets it sends to the peers, "in" on
    packets it receives from them, "both" on both."""

    service: str
    peers: list[str] = field(default_factory=list)
    direction: str = "both"
    tag: str = field(default_factory=new_tag, kw_only=True)  # names its chain or qdisc handle

    feature = "netfilter (nf_tables or x_tables)"

    @property
    def chain(self) -> str:
        return f"OUTAGE-{self.tag}"

    @abstractmethod
    def verdict(self) -> str:
        """The match and target every rule of this fault ends with."""

    def _rules_script(self, addresses: dict[str, str] | None) -> str:
        """Create the chain, fill it, and jump to it. `addresses`: peer -> IP (None: no peers)."""
        hooks = DIRECTIONS[self.direction]
        lines = ["set -e", f"iptables -w -N {self.chain}"]
        for hook in hooks:
            for address in (addresses or {}).values():
                lines.append(f"iptables -w -A {self.chain} {_ADDRESS_MATCH[hook]} {address} {self.verdict()}")
        if not addresses:
            lines.append(f"iptables -w -A {self.chain} {self.verdict()}")
        lines += [f"iptables -w -I {hook} {_JUMP_MATCH[hook]} -j {self.chain}" for hook in hooks]
        return "\n".join(lines)

    def preflight(self, stack: Stack) -> None:
        if self.direction not in DIRECTIONS:
            raise FaultRefused(f"direction {self.direction!r}: expected one of {', '.join(DIRECTIONS)}")
        require_service(stack, self.service)
        for peer in self.peers:
            if peer == self.service:
                raise FaultRefused(f"{self.service} cannot be its own peer")
            require_service(stack, peer)
        probe = self._rules_script({peer: _PROBE_ADDRESS for peer in self.peers[:1]} or None)
        code, output = stack.run_in_netns(None, probe)
        if code != 0:
            raise FaultRefused(
                f"{self.kind} needs {self.feature} in the Docker host's kernel; trying the rule in a "
                f"throwaway namespace answered: {output.strip()[-300:]}"
            )

    def inject(self, stack: Stack) -> None:
        addresses = {peer: stack.address(peer) for peer in self.peers}
        _run(stack, self.service, self._rules_script(addresses or None), f"applying {self.describe()}")

    def revert(self, stack: Stack) -> None:
        try:
            stack.address(self.service)
        except Exception:
            return  # not running: its namespace, and the rules in it, are gone
        lines = [
            f"while iptables -w -D {hook} {_JUMP_MATCH[hook]} -j {self.chain} 2>/dev/null; do :; done"
            for hook in DIRECTIONS["both"]
        ]
        lines += [
            f"iptables -w -F {self.chain} 2>/dev/null || true",
            f"iptables -w -X {self.chain} 2>/dev/null || true",
            f"! iptables -S | grep -q -e {self.chain}",
        ]
        _run(stack, self.service, "\n".join(lines), f"reverting {self.describe()}")


@dataclass
class LinkPartition(LinkFault):
    """The service and its peers stop hearing each other (one way or both); other links stay up.

    Packets are dropped silently, as in a real partition: connections time out, they are not
    refused."""

    kind = "link_partition"

    def verdict(self) -> str:
        return "-j DROP"


@dataclass
class PacketShareFault(LinkFault):
    """A link fault that hits a share of the packets (each packet drawn independently)."""

    share: float = 1.0

    def preflight(self, stack: Stack) -> None:
        if not 0 < self.share <= 1:
            raise FaultRefused(f"share {self.share}: expected a fraction in (0, 1]")
        super().preflight(stack)

    def statistic(self) -> str:
        return "" if self.share >= 1 else f"-m statistic --mode random --probability {self.share:.4f} "


@dataclass
class PacketLoss(PacketShareFault):
    """A share of the packets on the link is dropped, independently per packet and per direction
    (a round trip over a "both" link of share p is lost with probability 1 - (1 - p)^2)."""

    kind = "packet_loss"
    share: float = 0.25

    feature = "the iptables statistic match (xt_statistic)"

    def verdict(self) -> str:
        return f"{self.statistic()}-j DROP"


@dataclass
class ConnectionResets(PacketShareFault):
    """TCP packets on the link are answered with a reset: new connections are refused and
    established ones broken (a share of the packets when `share` < 1).

    The reset goes to the sender of the packet hit: "out" resets the service's own sockets at once
    (its connect is refused, its send breaks the connection); "in" resets the peers' side, while
    the service, whose packets from them are swallowed, only times out."""

    kind = "connection_resets"

    feature = "the iptables REJECT target (nft_reject or xt_REJECT), and xt_statistic for a share"

    def verdict(self) -> str:
        return f"-p tcp {self.statistic()}-j REJECT --reject-with tcp-reset"


@dataclass
class QdiscFault(Fault):
    """A root queueing discipline on the service's interface to the project network (egress)."""

    service: str
    tag: str = field(default_factory=new_tag, kw_only=True)  # names its chain or qdisc handle

    feature = "a queueing discipline"

    @property
    def handle(self) -> str:
        return f"{int(self.tag[:4], 16) or 1:x}:"

    @abstractmethod
    def qdisc(self) -> str:
        """The discipline and its parameters, as `tc qdisc add` takes them."""

    def preflight(self, stack: Stack) -> None:
        require_service(stack, self.service)
        probe = f"tc qdisc add dev lo root handle {self.handle} {self.qdisc()}"
        code, output = stack.run_in_netns(None, probe)
        if code != 0:
            raise FaultRefused(
                f"{self.kind} needs {self.feature}, which the Docker host's kernel does not offer: "
                f"`tc qdisc add ... {self.qdisc().split()[0]}` answered: {output.strip()[-200:]}"
            )

    def inject(self, stack: Stack) -> None:
        address = shlex.quote(stack.address(self.service))
        script = (
            "set -e\n"
            f"dev=$(ip -o -4 addr show | awk -v ip={address} "
            "'{split($4, a, \"/\"); if (a[1] == ip) print $2}')\n"
            '[ -n "$dev" ] || { echo "no interface holds the service address"; exit 1; }\n'
            f"tc qdisc add dev $dev root handle {self.handle} {self.qdisc()}"
        )
        _run(stack, self.service, script, f"applying {self.describe()}")

    def revert(self, stack: Stack) -> None:
        try:
            stack.address(self.service)
        except Exception:
            return  # not running: its namespace, and the qdisc in it, are gone
        script = (
            "for dev in $(ls /sys/class/net); do "
            f"if tc qdisc show dev $dev root | grep -q ' {self.handle} root'; "
            "then tc qdisc del dev $dev root; fi; "
            "done\n"
            f"! tc qdisc show | grep -q ' {self.handle} root'"
        )
        _run(stack, self.service, script, f"reverting {self.describe()}")


@dataclass
class BandwidthLimit(QdiscFault):
    """What the service sends is held to `rate_kbit` (a token bucket filter; bursts of 16 KiB or
    a tenth of a second's worth, whichever is more). Only egress: ingress would need an ifb device."""

    kind = "bandwidth_limit"
    rate_kbit: int = 1000

    feature = "the token bucket filter (sch_tbf)"

    def qdisc(self) -> str:
        burst = max(16 * 1024, self.rate_kbit * 1000 // 8 // 10)
        return f"tbf rate {self.rate_kbit}kbit burst {burst} latency 400ms"


@dataclass
class Latency(QdiscFault):
    """What the service sends is delayed by `delay_ms`, give or take `jitter_ms`."""

    kind = "latency"
    delay_ms: int = 100
    jitter_ms: int = 0

    feature = (
        "the network emulator queueing discipline (sch_netem, CONFIG_NET_SCH_NETEM; "
        "`modprobe sch_netem` on the Docker host, or a kernel built with it)"
    )

    def qdisc(self) -> str:
        jitter = f" {self.jitter_ms}ms" if self.jitter_ms else ""
        return f"netem delay {self.delay_ms}ms{jitter}"
