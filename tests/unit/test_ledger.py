"""The fault ledger remembers every injection until it is reverted, even across a kill -9."""

from __future__ import annotations

from faults.base import fault_from_record
from faults.containers import PauseContainer
from faults.failpoints import Failpoint
from harness.stack.ledger import FaultLedger


def test_an_injection_is_outstanding_until_reverted(tmp_path):
    ledger = FaultLedger(tmp_path / "ledger.jsonl")
    first = ledger.record_injection(PauseContainer("api").record())
    second = ledger.record_injection(Failpoint("worker.pause", True).record())
    ledger.record_revert(first)
    assert [entry for entry, _ in ledger.outstanding()] == [second]


def test_a_torn_last_line_from_a_killed_harness_is_ignored(tmp_path):
    ledger = FaultLedger(tmp_path / "ledger.jsonl")
    ledger.record_injection(PauseContainer("api").record())
    with open(ledger.path, "a") as handle:
        handle.write('{"id": "abc", "op": "inj')  # the process died mid-write
    assert len(ledger.outstanding()) == 1


def test_a_ledger_record_rebuilds_the_same_fault():
    fault = Failpoint("api.latency_ms", 250)
    assert fault_from_record(fault.record()) == fault
    assert fault_from_record(PauseContainer("redis").record()) == PauseContainer("redis")


def test_no_ledger_file_means_nothing_outstanding(tmp_path):
    assert FaultLedger(tmp_path / "absent.jsonl").outstanding() == []
