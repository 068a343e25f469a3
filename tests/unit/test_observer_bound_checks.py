"""A duration the harness timed while its own loop ran late is judged with that lateness in mind.

A reply that came on time is stamped late by as much as the harness's loop was late. So a
duration over its ceiling by less than that lateness is `unknown`: the run says nothing either
way, and the pytest fixture runs such a trial once more. A larger miss still fails, and figures
that are not durations are judged as before.
"""

from __future__ import annotations

from types import SimpleNamespace

from harness.checks.check import Check
from harness.checks.expect import AtLeast, AtMost, Expect, Measured, evaluate, observer_bound
from harness.interfaces.pytest_plugin import _only_observer_bound

P99 = Expect("ordinary.p99", "p99_ms", AtMost(300), why="the product's promise")
GAP = Expect("chatbot.gap", "gap_s", AtMost(5.0), why="the product's promise")
SHARE = Expect("reads.answered", "share", AtLeast(99), why="the product's promise")
UNITS = {"p99_ms": "ms", "gap_s": "s", "share": "%"}


def _judge(figures: dict[str, object], lag_s: float | None) -> dict[str, Check]:
    checks = evaluate((P99, GAP, SHARE), figures.__getitem__, UNITS, observer_lag_s=lag_s)
    return {check.name: check for check in checks}


def test_a_miss_smaller_than_the_harness_lateness_is_unknown_not_failed():
    checks = _judge({"p99_ms": Measured(441.0, "release"), "gap_s": 5.1, "share": 100}, lag_s=0.2)
    assert checks["ordinary.p99"].status == "unknown" and observer_bound(checks["ordinary.p99"])
    assert "441 ms (release)" in checks["ordinary.p99"].observed
    assert "0.2 s" in checks["ordinary.p99"].observed
    assert checks["chatbot.gap"].status == "unknown"


def test_a_miss_larger_than_the_harness_lateness_still_fails():
    checks = _judge({"p99_ms": 10_038.0, "gap_s": 23.4, "share": 100}, lag_s=0.2)
    assert checks["ordinary.p99"].status == "failed"
    assert checks["chatbot.gap"].status == "failed"


def test_without_lateness_every_miss_fails_and_every_keep_passes():
    checks = _judge({"p99_ms": 301.0, "gap_s": 2.0, "share": 100}, lag_s=None)
    assert checks["ordinary.p99"].status == "failed"
    assert checks["chatbot.gap"].status == "passed"
    assert _judge({"p99_ms": 301.0, "gap_s": 2.0, "share": 100}, lag_s=0.0)["ordinary.p99"].status == "failed"


def test_figures_that_are_not_durations_ignore_the_lateness():
    checks = _judge({"p99_ms": 10.0, "gap_s": 1.0, "share": 98.9}, lag_s=30.0)
    assert checks["reads.answered"].status == "failed"


def test_a_figure_that_never_happened_fails_whatever_the_lateness():
    checks = _judge({"p99_ms": None, "gap_s": float("inf"), "share": 100}, lag_s=30.0)
    assert checks["ordinary.p99"].status == "failed"
    assert checks["chatbot.gap"].status == "failed"


def _result(verdict: str, *checks: Check) -> SimpleNamespace:
    return SimpleNamespace(verdict=verdict, checks=list(checks))


def test_the_fixture_repeats_a_trial_only_when_the_harness_lateness_alone_left_it_unjudged():
    late = _judge({"p99_ms": 441.0, "gap_s": 1.0, "share": 100}, lag_s=0.2)["ordinary.p99"]
    raised = Check.not_judged("store.pressure", "computed", "KeyError: 'redis'")
    failed = Check("reads.answered", False, "93%", ">= 99%")
    assert _only_observer_bound(_result("unknown", late))
    assert not _only_observer_bound(_result("unknown", late, raised)), (
        "a checker's error is not the observer's"
    )
    assert not _only_observer_bound(_result("deviated", late, failed)), "a real failure is not repeated"
    assert not _only_observer_bound(_result("held"))
