"""The drill's score and its clock: the formula the README states, and when a drill counts as recovered."""

from __future__ import annotations

from harness.drill.steady_state import SLOWEST_SIGNAL_S, RecoveryClock, violations
from harness.drill.story import DrillStory, drill_score
from harness.observe.probes import ProbeSample


def healthy(t: float) -> ProbeSample:
    return ProbeSample(
        at=1000 + t, t=t, api_up=True, api_ready=True, canary_age_s=1.0, queue_depth=0,
        outbox_length=0, outbox_age_s=0.0, worker_heartbeat_age_s=1.0, oldest_job_age_s=0.0,
    )  # fmt: skip


def broker_down(t: float) -> ProbeSample:
    sample = healthy(t)
    sample.queue_depth = None
    sample.canary_age_s = 40.0
    return sample


def test_an_unrecovered_drill_scores_zero_whatever_else_happened():
    assert (
        drill_score(recovered=False, hints=0, recover_s=10, acknowledged_before_mitigation=True, lost=0) == 0
    )


def test_a_clean_fast_recovery_scores_100():
    assert (
        drill_score(recovered=True, hints=0, recover_s=59, acknowledged_before_mitigation=True, lost=0) == 100
    )


def test_each_hint_costs_10_and_each_whole_minute_costs_1():
    assert (
        drill_score(recovered=True, hints=2, recover_s=185, acknowledged_before_mitigation=True, lost=0) == 77
    )


def test_the_time_cost_is_capped_at_40():
    assert (
        drill_score(recovered=True, hints=0, recover_s=3 * 3600, acknowledged_before_mitigation=True, lost=0)
        == 60
    )


def test_no_acknowledgement_before_mitigation_costs_15_and_data_loss_costs_50():
    assert (
        drill_score(recovered=True, hints=0, recover_s=0, acknowledged_before_mitigation=False, lost=0) == 85
    )
    assert (
        drill_score(recovered=True, hints=0, recover_s=0, acknowledged_before_mitigation=True, lost=1) == 50
    )


def test_the_score_never_goes_below_zero():
    assert (
        drill_score(recovered=True, hints=9, recover_s=3600, acknowledged_before_mitigation=False, lost=3)
        == 0
    )


def test_the_story_measures_every_milestone_from_the_fault():
    story = DrillStory(fault_at=100, detected_at=110, acknowledged_at=130, mitigated_at=190, recovered_at=190)
    story.ended, story.hints_used = "recovered", 1
    assert story.durations() == {
        "time_to_detect_s": 10,
        "time_to_acknowledge_s": 30,
        "time_to_mitigate_s": 90,
        "time_to_recover_s": 90,
    }
    assert story.score() == 100 - 10 - 1


def test_a_drill_that_ended_at_its_time_limit_has_no_time_to_recover():
    story = DrillStory(fault_at=100, mitigated_at=150, recovered_at=None, ended="time-limit")
    assert story.durations()["time_to_recover_s"] is None and story.score() == 0


def test_the_hypothesis_names_what_breaks_it():
    assert violations(healthy(0)) == []
    assert violations(broker_down(0)) == ["canary not processed end to end", "broker unreachable"]


def test_the_clock_stops_where_an_unbroken_hold_began_after_a_break():
    clock = RecoveryClock(hold_s=10)
    for t in range(0, 3):
        clock.feed(healthy(t))  # the fault has not bitten yet
    for t in range(3, 20):
        clock.feed(broker_down(t))
    clock.feed(healthy(20))
    clock.feed(broker_down(21))  # mitigated once, broken again
    for t in range(22, 33):
        clock.feed(healthy(t))
    assert clock.broke_at == 3 and clock.mitigated_at == 20 and clock.recovered_at == 22


def test_a_hold_shorter_than_required_is_not_recovery():
    clock = RecoveryClock(hold_s=10)
    clock.feed(broker_down(0))
    for t in range(1, 10):
        clock.feed(healthy(t))
    assert not clock.recovered and clock.mitigated_at == 1


def test_an_unbroken_steady_state_counts_only_once_the_outage_phase_is_over():
    clock = RecoveryClock(hold_s=5)
    for t in range(0, 40):
        clock.feed(healthy(t))
    assert not clock.recovered, "a fault may take a while to bite"
    clock.outage_over = True
    clock.feed(healthy(40))
    assert clock.recovered and clock.recovered_at == 0


def test_a_fault_is_not_taken_for_absorbed_before_the_hypothesis_could_have_seen_it():
    # A killed worker shows only once its heartbeat is older than its limit: an outage phase of a
    # few seconds ends long before that, and the clock must not stop on "nothing happened".
    clock = RecoveryClock(hold_s=10, outage_over=True)
    for t in range(0, int(SLOWEST_SIGNAL_S)):
        clock.feed(healthy(t))
    assert not clock.recovered
    clock.feed(broker_down(int(SLOWEST_SIGNAL_S)))
    assert clock.broke_at == SLOWEST_SIGNAL_S and not clock.recovered
