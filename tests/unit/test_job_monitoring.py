"""Background-job monitoring: runner heartbeats, completion rate and the canary job tell broken job
runners from a healthy worker, even while the web app (and the worker process itself) look fine."""

from __future__ import annotations

from harness.checks.checker import check_messages
from harness.observe.alerts import (
    CANARY_JOB,
    JOB_COMPLETION_STALLED,
    JOB_RUNNER_HEARTBEAT,
    AlertEvaluator,
    job_rules,
)
from harness.observe.probes import Prober, ProbeSample
from harness.record.history import History
from harness.stack.protocol import Endpoints

NOW = 10_000.0


def _prober() -> Prober:
    endpoints = Endpoints(
        api="http://127.0.0.1:1",
        live="ws://127.0.0.1:1",
        redis="redis://127.0.0.1:1/0",
        amqp={},
        management={},
        metrics={},
    )
    return Prober(endpoints, clock=lambda: 0.0, canary_ticket=None, token="t")


def _healthy(t: float) -> ProbeSample:
    return ProbeSample(
        at=NOW + t,
        t=t,
        api_up=True,
        api_ready=True,
        worker_heartbeat_age_s=0.5,
        oldest_job_age_s=0.3,
        jobs_pending=3,
        job_runner_heartbeat_age_s=0.8,
        jobs_completed=int(14 * t),
        job_completion_rate=14.0,
        canary_job_age_s=1.0,
    )


def test_runners_of_a_live_worker_are_judged_by_the_stalest_one():
    beats = {
        "w1": str(NOW - 0.5),
        "w1/jobs-0": str(NOW - 1),
        "w1/jobs-1": str(NOW - 7),
        "w1/reclaimer": str(NOW - 3),
    }
    assert _prober()._job_runner_age(beats, NOW) == 7.0


def test_runners_of_a_worker_that_is_gone_are_ignored():
    # A redeploy gives the worker a new id; the old id's entries stay in the hash, stale forever.
    beats = {
        "old": str(NOW - 300),
        "old/jobs-0": str(NOW - 300),
        "new": str(NOW - 0.2),
        "new/jobs-0": str(NOW - 0.4),
    }
    assert _prober()._job_runner_age(beats, NOW) == 0.4
    assert _prober()._job_runner_age({"old": str(NOW - 300)}, NOW) is None


def test_a_live_worker_whose_runners_never_beat_ages_from_when_it_was_first_seen():
    prober = _prober()
    assert prober._job_runner_age({"w2": str(NOW)}, NOW) == 0.0
    assert prober._job_runner_age({"w2": str(NOW + 20)}, NOW + 20) == 20.0


def test_completion_rate_is_measured_over_a_window_and_survives_a_counter_reset():
    prober = _prober()
    rates = [prober._completion_rate(10 * t, NOW + t) for t in range(12)]
    assert rates[:5] == [None] * 5  # too short a window to tell
    assert rates[-1] == 10.0
    assert prober._completion_rate(0, NOW + 12) is None  # Redis lost its counter: start over


def test_job_monitors_stay_quiet_on_a_healthy_worker():
    fired = []
    evaluate = AlertEvaluator(job_rules(), lambda rule, sample: fired.append(rule.name))
    for t in range(120):
        evaluate(_healthy(t))
    assert fired == []


def test_broken_runners_fire_the_job_monitors_while_the_uptime_probe_is_green():
    fired: dict[str, float] = {}
    evaluate = AlertEvaluator(job_rules(), lambda rule, sample: fired.setdefault(rule.name, sample.t))
    for t in range(60):
        sample = _healthy(t)
        if t >= 10:  # the bad release: nothing completes, nothing beats, jobs pile up
            sample.job_runner_heartbeat_age_s = t - 10.0
            sample.job_completion_rate = 0.0
            sample.jobs_pending = 3 + 15 * (t - 10)
            sample.oldest_job_age_s = t - 10.0
            sample.canary_job_age_s = t - 10.0
        evaluate(sample)
    assert sample.api_up
    assert fired[JOB_COMPLETION_STALLED.name] == 15
    assert fired[JOB_RUNNER_HEARTBEAT.name] == 26
    assert fired[CANARY_JOB.name] == 31
    assert fired["job_age"] == 41


def test_messages_can_be_judged_over_several_operation_kinds():
    history = History()
    history.invoke("load", "post_message", "m1").ok()
    history.invoke("inbound", "import_email", "e1").ok()
    history.invoke("other", "something_else", "x1").ok()
    history.observe("email_delivered", "m1", NOW)
    history.observe("email_delivered", "e1", NOW)
    verdict = check_messages(history, "email_delivered", op_kind=("post_message", "import_email"))
    assert (verdict.attempted, verdict.lost, verdict.unexpected) == (2, 0, 0)
    assert check_messages(history, "email_delivered", op_kind="import_email").unexpected == 1
