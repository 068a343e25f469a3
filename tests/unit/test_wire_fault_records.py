"""Wire and host faults: what the ledger holds is enough to revert them, and the rules they write
are the ones asked for (the stack tests show the rules' effect)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from faults.base import fault_from_record, fault_kinds
from faults.host import ClockSkew, CpuThrottle, MemoryPressure
from faults.network import BandwidthLimit, ConnectionResets, Latency, LinkPartition, PacketLoss
from harness.stack.cgroup_limits import NO_LIMIT, CgroupReadError, parse_limits
from harness.stack.protocol import Limits


@pytest.mark.parametrize(
    "fault",
    [
        LinkPartition("worker", peers=["rabbit1", "rabbit2"], direction="out"),
        PacketLoss("relay", peers=["rabbit1"], share=0.3),
        ConnectionResets("relay", share=0.25),
        BandwidthLimit("api", rate_kbit=500),
        Latency("api", delay_ms=100, jitter_ms=10),
        CpuThrottle("worker", cpus=0.5, previous={"cpu_period_us": 100000, "cpu_quota_us": -1}),
        MemoryPressure("api", limit_mib=128),
        ClockSkew("worker", offset_s=-90),
    ],
)
def test_a_ledger_record_rebuilds_the_same_fault_with_its_tag_and_previous_limits(fault):
    assert fault_from_record(fault.record()) == fault


def test_every_family_registers_its_faults_by_kind():
    assert {
        "link_partition",
        "packet_loss",
        "connection_resets",
        "bandwidth_limit",
        "latency",
        "cpu_throttle",
        "memory_pressure",
        "clock_skew",
    } <= set(fault_kinds())


def test_each_fault_gets_its_own_chain_so_reverting_one_leaves_the_others():
    first, second = PacketLoss("relay"), PacketLoss("relay")
    assert first.chain != second.chain
    assert first.chain.startswith("OUTAGE-") and len(first.chain) <= 28  # iptables' limit on names


def test_a_partition_both_ways_drops_what_goes_to_and_what_comes_from_each_peer():
    fault = LinkPartition("worker", peers=["rabbit1", "rabbit2"])
    script = fault._rules_script({"rabbit1": "10.0.0.1", "rabbit2": "10.0.0.2"})
    chain = fault.chain
    assert f"iptables -w -A {chain} -d 10.0.0.1 -j DROP" in script
    assert f"iptables -w -A {chain} -s 10.0.0.2 -j DROP" in script
    assert f"iptables -w -I OUTPUT ! -o lo -j {chain}" in script  # loopback (health checks) untouched
    assert f"iptables -w -I INPUT ! -i lo -j {chain}" in script


def test_one_way_loss_only_hooks_the_way_asked():
    script = PacketLoss("relay", peers=["rabbit1"], direction="out", share=0.3)._rules_script(
        {"rabbit1": "10.0.0.1"}
    )
    assert "--probability 0.3000 -j DROP" in script
    assert "-I OUTPUT" in script and "-I INPUT" not in script and "-s 10.0.0.1" not in script


def test_resets_answer_tcp_with_a_reset():
    assert ConnectionResets("relay").verdict() == "-p tcp -j REJECT --reject-with tcp-reset"
    assert "--probability 0.2500" in ConnectionResets("relay", share=0.25).verdict()


def test_cgroup_v1_limits_are_read_as_the_kernel_holds_them():
    output = "v1\n100000\n-1\n9223372036854771712\n9223372036854771712\n"
    assert parse_limits(output) == Limits(100000, -1, 9223372036854771712, 9223372036854771712)


def test_cgroup_v2_limits_count_swap_with_memory_as_docker_does():
    assert parse_limits("v2\n20000 100000\n268435456\n0\n") == Limits(100000, 20000, 268435456, 268435456)
    assert parse_limits("v2\nmax 100000\nmax\nmax\n") == Limits(100000, NO_LIMIT, NO_LIMIT, NO_LIMIT)


def test_unreadable_cgroup_files_are_an_error_not_a_guess():
    with pytest.raises(CgroupReadError):
        parse_limits("cat: /sys/fs/cgroup/cpu.max: No such file or directory")


def test_heal_rebuilds_every_family_from_a_fresh_process_that_imported_none_of_them():
    # `outage heal` runs in a new process: the ledger's kinds must resolve without prior imports.
    script = (
        "from faults.base import fault_from_record\n"
        "print(type(fault_from_record({'kind': 'cpu_throttle', 'service': 'worker', 'cpus': 1})).__name__)\n"
        "print(type(fault_from_record({'kind': 'link_partition', 'service': 'worker'})).__name__)"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert output.split() == ["CpuThrottle", "LinkPartition"]
