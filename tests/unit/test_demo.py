"""The demo passes only when the vulnerable run shows the incident's named symptom."""

from __future__ import annotations

from harness.checks.check import Check
from harness.interfaces.demo import demo_succeeded
from harness.record.report import RunResult


def _result(profile: str, verdict: str, failed: tuple[str, ...]) -> RunResult:
    checks = [Check(name, False, "x", "y") for name in failed] + [Check("messages.lost", True, "0", "0")]
    return RunResult("s", "t", profile, 1, verdict, {}, checks, {}, {}, 1.0)


def test_the_demo_succeeds_when_hardened_holds_and_vulnerable_fails_its_named_symptoms():
    assert demo_succeeded(
        ("api.reads_during_outage",),
        _result("hardened", "held", ()),
        _result("vulnerable", "deviated", ("api.reads_during_outage",)),
    )


def test_a_vulnerable_run_caught_by_another_check_is_not_the_incident():
    assert not demo_succeeded(
        ("api.reads_during_outage",),
        _result("hardened", "held", ()),
        _result("vulnerable", "deviated", ("messages.duplicated",)),
    )


def test_a_hardened_run_that_deviates_fails_the_demo():
    assert not demo_succeeded(
        (),
        _result("hardened", "deviated", ("messages.lost",)),
        _result("vulnerable", "deviated", ("messages.lost",)),
    )
