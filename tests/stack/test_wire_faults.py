"""Faults on the wire and on the host do what they say, as measured from inside the stack, and
leave nothing behind, as checked inside the container.

Measured: a connection through a partitioned link, the loss ping sees against the share asked, a
connection reset new and established, the throughput iperf3 gets before, during and after a
bandwidth limit, the CPU a busy loop gets under a quota and the kernel's throttling count, an
allocation under a memory cap, the worker's heartbeat clock under a skew. Left behind: no OUTAGE
chain or rule and no queueing discipline but the default in the namespace, the cgroup limits the
kernel had before, no clock offset in any process. And a harness killed with -9 while it holds
faults leaves nothing once `outage heal` has run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import redis

from faults.base import FaultRefused
from faults.host import CLOCK_OFFSET_FILE, ClockSkew, CpuThrottle, MemoryPressure
from faults.network import BandwidthLimit, ConnectionResets, LinkPartition, PacketLoss, leftovers
from harness.stack.ledger import FaultLedger
from harness.stack.protocol import BROKER_NODES
from services.common import keys
from tests.stack.polling import wait_for

pytestmark = [pytest.mark.stack, pytest.mark.chaos]

OUTAGE = os.path.join(os.path.dirname(sys.executable), "outage")

# Opens a TCP connection from inside a service; prints "connected" or the error's class name.
_CONNECT = textwrap.dedent(
    """
    import socket, sys
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
        print("connected")
    except OSError as exc:
        print("timeout" if isinstance(exc, socket.timeout) else type(exc).__name__)
    """
)


def _connect(outage_stack, source: str, host: str, port: int) -> str:
    code, output = outage_stack.control.exec(source, ["python", "-c", _CONNECT, host, str(port)])
    assert code == 0, output
    return output.strip()


def _round_trip_loss(outage_stack, source: str, target: str, count: int = 400) -> float:
    """The share of `count` pings from `source` to `target` that got no reply."""
    address = outage_stack.control.address(target)
    code, output = outage_stack.control.run_in_netns(source, f"ping -q -n -c {count} -i 0.005 -W 1 {address}")
    sent, received = map(int, re.search(r"(\d+) packets transmitted, (\d+) received", output).groups())
    assert sent == count, output
    return 1 - received / sent


def test_partition_cuts_the_worker_off_the_brokers_while_it_still_reaches_redis(outage_stack, outage_fault):
    assert _connect(outage_stack, "worker", "rabbit1", 5672) == "connected"
    with outage_fault(LinkPartition("worker", peers=list(BROKER_NODES))):
        for node in BROKER_NODES:
            assert _connect(outage_stack, "worker", node, 5672) == "timeout"  # silence, as a real partition
        assert _connect(outage_stack, "worker", "redis", 6379) == "connected"
        assert leftovers(outage_stack.control, "worker"), (
            "the partition's rules should be visible while it holds"
        )
    assert _connect(outage_stack, "worker", "rabbit1", 5672) == "connected"
    assert leftovers(outage_stack.control, "worker") == []


@pytest.mark.parametrize(
    ("direction", "expected"),
    [("in", 0.3), ("both", 1 - 0.7**2)],  # both ways: the request or the reply may be dropped
)
def test_packet_loss_drops_the_share_asked(outage_stack, outage_fault, direction, expected):
    with outage_fault(PacketLoss("worker", peers=["redis"], direction=direction, share=0.3)):
        seen = _round_trip_loss(outage_stack, "worker", "redis")
        # 400 independent draws: the standard deviation of the share seen is under 0.025.
        print(f"loss asked {0.3} {direction}: expected {expected:.3f} per round trip, seen {seen:.3f}")
        assert abs(seen - expected) < 0.1
        assert _round_trip_loss(outage_stack, "worker", "rabbit1", count=100) == 0, "another link was hit"
    assert _round_trip_loss(outage_stack, "worker", "redis") == 0
    assert leftovers(outage_stack.control, "worker") == []


# Holds a connection to Redis across the fault: PING before, wait for a line on stdin, PING again.
_HELD_CONNECTION = textwrap.dedent(
    """
    import socket, sys
    connection = socket.create_connection(("redis", 6379), timeout=5)
    connection.sendall(b"PING\\r\\n")
    print(connection.recv(64).decode().strip(), flush=True)
    sys.stdin.readline()
    try:
        connection.sendall(b"PING\\r\\n")
        reply = connection.recv(64).decode().strip()
        print(reply or "closed", flush=True)
    except OSError as exc:
        print(type(exc).__name__, flush=True)
    """
)


def test_connection_resets_refuse_new_connections_and_break_established_ones(outage_stack, outage_fault):
    container = outage_stack.control.container("worker")
    held = subprocess.Popen(
        ["docker", "exec", "-i", container.id, "python", "-c", _HELD_CONNECTION],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert held.stdout.readline().strip() == "+PONG"
        with outage_fault(ConnectionResets("worker", peers=["redis"])):
            assert _connect(outage_stack, "worker", "redis", 6379) == "ConnectionRefusedError"
            held.stdin.write("\n")
            held.stdin.flush()
            assert held.stdout.readline().strip() in ("ConnectionResetError", "BrokenPipeError")
        assert _connect(outage_stack, "worker", "redis", 6379) == "connected"
        assert leftovers(outage_stack.control, "worker") == []
    finally:
        held.kill()
        held.wait()


def _throughput_kbit(outage_stack, source: str, server_address: str) -> float:
    """What iperf3's receiver got from `source` in two seconds, in kbit/s."""
    # The server may still be starting: try again until it answers.
    script = (
        f"for attempt in $(seq 20); do iperf3 -J -c {server_address} -t 2 > /tmp/report && "
        "cat /tmp/report && exit 0; sleep 0.3; done; exit 1"
    )
    code, output = outage_stack.control.run_in_netns(source, script, timeout=60)
    assert code == 0, output[-500:]
    return json.loads(output)["end"]["sum_received"]["bits_per_second"] / 1000


def test_bandwidth_limit_holds_what_the_service_sends_to_the_rate(outage_stack, outage_fault):
    rate_kbit = 2000
    server = outage_stack.control.start_in_netns("redis", "iperf3 -s")
    try:
        address = outage_stack.control.address("redis")
        before = _throughput_kbit(outage_stack, "worker", address)
        with outage_fault(BandwidthLimit("worker", rate_kbit=rate_kbit)):
            during = _throughput_kbit(outage_stack, "worker", address)
        after = _throughput_kbit(outage_stack, "worker", address)
    finally:
        server.remove(force=True)
    print(f"kbit/s: before {before:.0f}, during {during:.0f} (limit {rate_kbit}), after {after:.0f}")
    # A token bucket passes at most its rate plus one burst (25 kB here: 5 % more over two seconds).
    assert during <= rate_kbit * 1.1
    assert before > 10 * rate_kbit and after > 10 * rate_kbit
    assert leftovers(outage_stack.control, "worker") == []


def test_latency_is_refused_on_a_kernel_without_netem_and_nothing_is_ledgered(outage_stack, outage_fault):
    from faults.network import Latency

    code, _ = outage_stack.control.run_in_netns(None, "tc qdisc add dev lo root netem delay 1ms")
    if code == 0:
        pytest.skip("this kernel has sch_netem: the refusal cannot happen here")
    before = FaultLedger().outstanding()
    with (
        pytest.raises(FaultRefused, match="sch_netem"),
        outage_fault(Latency("worker", delay_ms=100, jitter_ms=20)),
    ):
        pass
    assert FaultLedger().outstanding() == before
    assert leftovers(outage_stack.control, "worker") == []


# A busy loop of one second: the share of a CPU it got, then the cgroup's throttling count.
_BUSY = textwrap.dedent(
    """
    import time
    started, cpu = time.monotonic(), time.process_time()
    while time.monotonic() - started < 1:
        pass
    print(round((time.process_time() - cpu) / (time.monotonic() - started), 3))
    """
)
_THROTTLED = "cat /sys/fs/cgroup/cpu/cpu.stat 2>/dev/null || cat /sys/fs/cgroup/cpu.stat"


def _busy_share(outage_stack, service: str) -> tuple[float, int]:
    code, output = outage_stack.control.exec(service, ["python", "-c", _BUSY])
    assert code == 0, output
    code, stat = outage_stack.control.exec(service, ["sh", "-c", _THROTTLED])
    assert code == 0, stat
    return float(output), int(re.search(r"nr_throttled (\d+)", stat).group(1))


def test_cpu_throttle_caps_the_service_and_restores_its_limits_exactly(outage_stack, outage_fault):
    before = outage_stack.control.limits("worker")
    share_before, _ = _busy_share(outage_stack, "worker")
    with outage_fault(CpuThrottle("worker", cpus=0.02)):
        assert outage_stack.control.limits("worker").cpu_quota_us == 2000
        _, throttled_at_start = _busy_share(outage_stack, "worker")
        share_during, throttled_at_end = _busy_share(outage_stack, "worker")
    share_after, _ = _busy_share(outage_stack, "worker")
    print(f"busy loop's CPU: before {share_before}, during {share_during} (quota 0.02), after {share_after}")
    # The quota is 2 ms per 100 ms period; one second of wall time spans ten periods (and a bit).
    assert share_during <= 0.02 * 1.5
    assert throttled_at_end > throttled_at_start, "the kernel never throttled the busy loop"
    assert outage_stack.control.limits("worker") == before


def _usage_mib(outage_stack, service: str) -> int:
    code, output = outage_stack.control.exec(
        service,
        ["sh", "-c", "cat /sys/fs/cgroup/memory/memory.usage_in_bytes || cat /sys/fs/cgroup/memory.current"],
    )
    assert code == 0, output
    return int(output) // (1024 * 1024)


_ALLOCATE_320_MIB = "block = b'x' * (320 << 20); print('allocated')"


def test_memory_pressure_caps_the_service_and_restores_its_limits_exactly(outage_stack, outage_fault):
    before = outage_stack.control.limits("worker")
    # Room for the service as it is, not for an allocation of 320 MiB on top of it.
    limit_mib = _usage_mib(outage_stack, "worker") + 160
    with outage_fault(MemoryPressure("worker", limit_mib=limit_mib)):
        assert outage_stack.control.limits("worker").memory_bytes == limit_mib * 1024 * 1024
        code, _ = outage_stack.control.exec("worker", ["python", "-c", _ALLOCATE_320_MIB])
        assert code == 137, "the allocation should have been killed by the cgroup's OOM killer"
    assert outage_stack.control.limits("worker") == before
    assert outage_stack.control.exec("worker", ["python", "-c", _ALLOCATE_320_MIB]) == (0, "allocated\n")
    assert outage_stack.control.status().services["worker"].state == "running"


def _heartbeat_offsets(outage_stack) -> list[float]:
    """How far ahead of the true time each beat of the running worker container is, in seconds.

    Beats are keyed by the container's hostname: those of containers recreated earlier stay in
    the hash with their last (true) time and are not this worker's.
    """
    worker_id = outage_stack.control.exec("worker", ["hostname"])[1].strip()
    client = redis.Redis.from_url(outage_stack.redis_url, decode_responses=True)
    beats = client.hgetall(keys.WORKER_HEARTBEATS)
    return [
        float(beat) - time.time()
        for runner, beat in beats.items()
        if runner == worker_id or runner.startswith(f"{worker_id}/")
    ]


def _all_within(offsets: list[float], limit_s: float) -> bool:
    return bool(offsets) and all(abs(offset) < limit_s for offset in offsets)


def _faketime_processes(outage_stack, service: str) -> int:
    script = "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c ^FAKETIME= || true"
    return int(outage_stack.control.exec(service, ["sh", "-c", script])[1].strip() or 0)


def test_clock_skew_moves_the_worker_heartbeats_ahead_and_back(outage_stack, outage_fault):
    with outage_fault(ClockSkew("worker", offset_s=300)):
        assert wait_for(lambda: max(_heartbeat_offsets(outage_stack), default=0) > 200, 90), (
            "no skewed heartbeat"
        )
        seen = max(_heartbeat_offsets(outage_stack))
        print(f"heartbeat ahead by {seen:.1f} s (skew asked 300 s)")
        # A beat is written every second: it is at most a second (and the read) old.
        assert 298 <= seen <= 301
        assert _faketime_processes(outage_stack, "worker") > 0
    # After the revert the worker beats with the true time again (the skewed beats are overwritten).
    assert wait_for(lambda: _all_within(_heartbeat_offsets(outage_stack), 5), 90)
    assert outage_stack.control.exec("worker", ["test", "-e", CLOCK_OFFSET_FILE])[0] != 0
    assert _faketime_processes(outage_stack, "worker") == 0


def test_clock_skew_is_refused_where_the_image_has_no_libfaketime(outage_stack, outage_fault):
    with pytest.raises(FaultRefused, match="libfaketime"), outage_fault(ClockSkew("redis", offset_s=60)):
        pass


@pytest.mark.parametrize(
    "outsider", [LinkPartition("postgres", peers=["redis"]), PacketLoss("worker", peers=["8.8.8.8"])]
)
def test_faults_outside_the_project_are_refused(outage_stack, outage_fault, outsider):
    with pytest.raises(FaultRefused, match="not a service"), outage_fault(outsider):
        pass


_HARNESS_HOLDING_WIRE_FAULTS = textwrap.dedent(
    """
    import time
    from faults.base import apply
    from faults.host import CpuThrottle, MemoryPressure
    from faults.network import BandwidthLimit, ConnectionResets, LinkPartition, PacketLoss
    from harness.stack.compose_stack import ComposeStack
    from harness.stack.ledger import FaultLedger

    stack, ledger = ComposeStack(), FaultLedger()
    for fault in (
        LinkPartition("worker", peers=["rabbit1", "rabbit2", "rabbit3"]),
        PacketLoss("api", peers=["redis"], share=0.2),
        ConnectionResets("relay", peers=["rabbit2"], share=0.5),
        BandwidthLimit("relay", rate_kbit=1000),
        CpuThrottle("worker", cpus=0.5),
        MemoryPressure("api", limit_mib=1024),
    ):
        apply(fault, stack, ledger)
    print("faults in place", flush=True)
    time.sleep(600)
    """
)


def test_heal_leaves_nothing_behind_a_harness_killed_while_holding_wire_faults(outage_stack, tmp_path):
    services = ("worker", "api", "relay")
    limits_before = {service: outage_stack.control.limits(service) for service in services}
    env = {**os.environ, "OUTAGE_LEDGER": str(tmp_path / "ledger.jsonl")}
    harness = subprocess.Popen(
        [sys.executable, "-c", _HARNESS_HOLDING_WIRE_FAULTS], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert harness.stdout.readline().strip() == "faults in place"
    finally:
        harness.send_signal(signal.SIGKILL)
        harness.wait()
    assert all(leftovers(outage_stack.control, service) for service in services)
    assert outage_stack.control.limits("worker").cpu_quota_us == 50_000

    healed = subprocess.run([OUTAGE, "heal"], env=env, capture_output=True, text=True)
    print(healed.stdout)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    for service in services:
        assert leftovers(outage_stack.control, service) == [], service
        assert outage_stack.control.limits(service) == limits_before[service], service
    assert FaultLedger(tmp_path / "ledger.jsonl").outstanding() == []
