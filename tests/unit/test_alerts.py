"""An alert fires once, after its condition has held long enough, and never on a healthy system."""

from __future__ import annotations

from harness.observe.alerts import UPTIME, AlertEvaluator, default_rules
from harness.observe.probes import ProbeSample


def _healthy(t: float) -> ProbeSample:
    return ProbeSample(
        at=1000 + t,
        t=t,
        api_up=True,
        api_ready=True,
        canary_age_s=1.0,
        queue_depth=3,
        outbox_length=0,
        worker_heartbeat_age_s=0.5,
        oldest_job_age_s=0.2,
        jobs_pending=1,
    )


def test_a_healthy_system_fires_nothing():
    fired = []
    evaluate = AlertEvaluator(default_rules(), lambda rule, sample: fired.append(rule.name))
    for t in range(60):
        evaluate(_healthy(t))
    assert fired == []


def test_the_uptime_alert_waits_for_its_window_then_fires_once():
    fired = []
    evaluate = AlertEvaluator([UPTIME], lambda rule, sample: fired.append((rule.name, sample.t)))
    for t in range(10):
        sample = _healthy(t)
        sample.api_up = t < 2
        evaluate(sample)
    assert fired == [("api_down", 5)]  # down from t=2, fires after 3 s


def test_a_blip_shorter_than_the_window_does_not_fire():
    fired = []
    evaluate = AlertEvaluator([UPTIME], lambda rule, sample: fired.append(rule.name))
    for t in range(10):
        sample = _healthy(t)
        sample.api_up = t not in (3, 4)
        evaluate(sample)
    assert fired == []


def test_a_stale_canary_fires_the_dead_mans_switch():
    fired = []
    evaluate = AlertEvaluator(default_rules(), lambda rule, sample: fired.append(rule.name))
    sample = _healthy(30)
    sample.canary_age_s = 25.0
    evaluate(sample)
    assert fired == ["canary_stale"]
