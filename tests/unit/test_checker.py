"""The checker finds each kind of anomaly in small, hand-written histories."""

from __future__ import annotations

from harness.checks.checker import (
    FIRST_ATTEMPT,
    RETRIED_AFTER_UNKNOWN,
    LiveGap,
    OrderViolation,
    check_live,
    check_messages,
    lost_paths,
)
from harness.checks.latency import percentile, summarize
from harness.record.history import History


def _post(history: History, key: str, outcome: str = "ok", ticket_id: int = 1) -> float:
    """Invoke and complete one post_message; returns its invoke wall time."""
    op = history.invoke("client", "post_message", key, ticket_id=ticket_id)
    if outcome == "ok":
        op.ok(status=202)
    elif outcome == "fail":
        op.fail("rejected", status=400)
    elif outcome == "info":
        op.info("timeout")
    return op.record().invoke_wall


def _effect(history: History, key: str, at: float = 1_700_000_000.0) -> None:
    history.observe("processed", key, at)


def _checks_by_name(checks):
    return {check.name: check for check in checks}


def test_a_clean_history_passes_every_check():
    history = History()
    for key in ("m1", "m2", "m3"):
        _post(history, key)
        _effect(history, key)

    verdict = check_messages(history)

    assert verdict.as_summary() == {
        "attempted": 3,
        "acked": 3,
        "failed": 0,
        "unknown": 0,
        "delivered": 3,
        "lost": 0,
        "duplicated": 0,
        "unexpected": 0,
        "recovered": 0,
    }
    assert all(check.passed for check in verdict.to_checks())


def test_an_acknowledged_message_never_observed_is_lost():
    history = History()
    _post(history, "m1")
    _post(history, "m2")
    _effect(history, "m1")

    verdict = check_messages(history)

    assert (verdict.acked, verdict.delivered, verdict.lost) == (2, 1, 1)
    assert verdict.lost_keys == ("m2",)
    lost = _checks_by_name(verdict.to_checks())["messages.lost"]
    assert not lost.passed
    assert lost.observed == "1: m2"


def test_the_lost_sample_is_capped_but_the_count_is_complete():
    history = History()
    for n in range(50):
        _post(history, f"m{n}")

    verdict = check_messages(history, sample_size=5)

    assert verdict.lost == 50
    assert verdict.lost_keys == ("m0", "m1", "m2", "m3", "m4")
    assert _checks_by_name(verdict.to_checks())["messages.lost"].observed.endswith(", ...")


def test_an_effect_nobody_attempted_is_unexpected():
    history = History()
    _post(history, "m1")
    _effect(history, "m1")
    _effect(history, "ghost")

    verdict = check_messages(history)

    assert verdict.unexpected == 1
    assert verdict.unexpected_keys == ("ghost",)
    assert verdict.delivered == 1  # only attempted keys count as delivered
    assert not _checks_by_name(verdict.to_checks())["messages.unexpected"].passed


def test_an_effect_applied_twice_is_duplicated_and_fails_unless_the_consumer_dedupes():
    history = History()
    _post(history, "m1")
    _post(history, "m2")
    for key in ("m1", "m2", "m2", "m2"):
        _effect(history, key)

    strict = check_messages(history)
    lenient = check_messages(history, dedupe_allowed=True)

    assert (strict.duplicated, strict.extra_applications, strict.duplicated_keys) == (1, 2, ("m2",))
    assert strict.delivered == 2
    assert not _checks_by_name(strict.to_checks())["messages.duplicated"].passed
    assert lenient.duplicated == 1
    assert _checks_by_name(lenient.to_checks())["messages.duplicated"].passed


def test_an_unknown_outcome_that_was_observed_is_recovered_not_lost():
    history = History()
    _post(history, "timed-out", outcome="info")
    _post(history, "never-answered", outcome="pending")
    _post(history, "timed-out-and-gone", outcome="info")
    _effect(history, "timed-out")
    _effect(history, "never-answered")

    verdict = check_messages(history)

    assert (verdict.unknown, verdict.recovered, verdict.lost) == (3, 2, 0)
    assert all(check.passed for check in verdict.to_checks())


def test_a_definite_failure_that_shows_up_anyway_is_a_bug_of_its_own():
    history = History()
    _post(history, "refused", outcome="fail")
    _post(history, "refused-but-stored", outcome="fail")
    _effect(history, "refused-but-stored")

    verdict = check_messages(history)

    assert (verdict.failed, verdict.failed_but_observed, verdict.unexpected) == (2, 1, 0)
    assert verdict.failed_but_observed_keys == ("refused-but-stored",)
    assert not _checks_by_name(verdict.to_checks())["messages.failed_but_observed"].passed


def test_retries_of_one_key_count_once_and_the_best_outcome_wins():
    history = History()
    _post(history, "m1", outcome="info")
    _post(history, "m1", outcome="ok")  # the retry got through
    _post(history, "m2", outcome="fail")
    _post(history, "m2", outcome="info")  # unknown beats a definite failure
    _effect(history, "m1")

    verdict = check_messages(history)

    assert verdict.operations == 4
    assert (verdict.attempted, verdict.acked, verdict.unknown, verdict.failed) == (2, 1, 1, 0)


def test_operations_without_a_key_or_of_another_kind_are_not_messages():
    history = History()
    history.invoke("client", "create_ticket").ok(ticket_id=1)
    _post(history, "m1")
    history.invoke("client", "bulk_close", "b1").ok()
    _effect(history, "m1")

    assert check_messages(history).attempted == 2
    assert check_messages(history, op_kind="post_message").attempted == 1


def test_a_message_overtaking_an_earlier_acknowledged_one_on_its_ticket_is_an_order_violation():
    history = History()
    _post(history, "first", ticket_id=7)  # acked before "second" is invoked
    _post(history, "second", ticket_id=7)
    _post(history, "elsewhere", ticket_id=8)
    for key in ("second", "elsewhere", "first"):
        _effect(history, key)

    verdict = check_messages(history)

    assert verdict.order_violations == 1
    assert verdict.order_violation_sample == (OrderViolation(7, "first", "second"),)
    assert not _checks_by_name(verdict.to_checks(check_order=True))["messages.per_ticket_order"].passed


def test_concurrent_messages_on_a_ticket_may_take_effect_in_either_order():
    history = History()
    a = history.invoke("c1", "post_message", "a", ticket_id=7)
    b = history.invoke("c2", "post_message", "b", ticket_id=7)  # invoked before "a" was acked
    a.ok()
    b.ok()
    _effect(history, "b")
    _effect(history, "a")

    assert check_messages(history).order_violations == 0


def test_latency_is_first_effect_minus_first_invocation():
    history = History()
    for n, delay in enumerate([0.1, 0.2, 0.3, 0.4, 2.0]):
        invoked = _post(history, f"m{n}", ticket_id=n)
        _effect(history, f"m{n}", at=invoked + delay)

    latency = check_messages(history).latency

    assert latency.count == 5
    assert abs(latency.p50 - 0.3) < 1e-6
    assert abs(latency.p90 - 2.0) < 1e-6
    assert abs(latency.max - 2.0) < 1e-6


def test_latency_budget_becomes_a_check_only_when_given():
    history = History()
    invoked = _post(history, "m1")
    _effect(history, "m1", at=invoked + 3.0)
    verdict = check_messages(history)

    assert "messages.latency_p99" not in _checks_by_name(verdict.to_checks())
    assert not _checks_by_name(verdict.to_checks(max_p99_s=1.0))["messages.latency_p99"].passed
    assert _checks_by_name(verdict.to_checks(max_p99_s=5.0))["messages.latency_p99"].passed


def test_nearest_rank_percentiles_on_known_numbers():
    values = list(range(1, 101))
    assert [percentile(values, p) for p in (0, 50, 90, 99, 100)] == [1, 50, 90, 99, 100]
    summary = summarize(reversed(values))
    assert (summary.p50, summary.p90, summary.p99, summary.max) == (50, 90, 99, 100)
    assert summarize([]).p50 is None


def test_replay_time_runs_from_recovery_to_the_last_acknowledged_effect():
    history = History()
    _post(history, "m1")
    _post(history, "m2")
    _post(history, "m3", outcome="info")
    _effect(history, "m1", at=1000.0)
    _effect(history, "m2", at=1012.5)
    _effect(history, "m3", at=1030.0)  # not acked: does not extend the replay

    verdict = check_messages(history)

    assert verdict.replay_seconds(recovered_at=1002.5) == 10.0
    assert verdict.replay_seconds(recovered_at=1020.0) == 0.0
    replay = _checks_by_name(verdict.to_checks(recovered_at=1002.5, max_replay_s=5))["messages.replay"]
    assert (replay.passed, replay.observed) == (False, "10.000 s")


def test_other_effect_kinds_are_checked_the_same_way():
    history = History()
    _post(history, "m1")
    _effect(history, "m1")
    history.observe("email_delivered", "m1", 1.0)
    history.observe("email_delivered", "m1", 2.0)

    verdict = check_messages(history, effect_kind="email_delivered")

    assert verdict.duplicated == 1
    assert verdict.to_checks(label="emails")[0].name == "emails.lost"


# -- live updates -------------------------------------------------------------------------------


def _update(history: History, client: str, seq: int, at: float = 0.0, session: int = 1, **extra) -> None:
    history.observe(
        "live_update", f"views:{seq}", at, client=client, channel="views", seq=seq, session=session, **extra
    )


def test_a_client_receiving_every_update_in_order_is_clean():
    history = History()
    for seq in range(1, 6):
        _update(history, "alice", seq, at=100.0 + seq)
        _update(history, "bob", seq, at=100.0 + seq)

    verdict = check_live(history, reference_at=102.0)

    assert (verdict.gaps, verdict.duplicates, verdict.out_of_order, verdict.laggard_count) == (0, 0, 0, 0)
    assert verdict.reconverge_s == 3.0  # both reached seq 5 at 105.0
    assert all(check.passed for check in verdict.to_checks(max_reconverge_s=10))


def test_a_skipped_sequence_number_is_a_gap_and_resuming_past_it_is_flagged():
    history = History()
    for seq in (1, 2, 3):
        _update(history, "alice", seq, session=1)
    for seq in (6, 7):  # reconnected and resumed from the wrong place
        _update(history, "alice", seq, session=2)

    verdict = check_live(history)

    assert (verdict.gaps, verdict.missed, verdict.sessions) == (1, 2, 2)
    assert verdict.gap_sample == (LiveGap("alice", "views", 3, 6, 2, on_resume=True),)
    gaps = _checks_by_name(verdict.to_checks())["live.gaps"]
    assert not gaps.passed
    assert "alice/views 3->6" in gaps.observed


def test_same_update_twice_is_a_duplicate_and_a_late_one_is_out_of_order():
    history = History()
    for seq in (1, 2, 2, 4, 3, 5):
        _update(history, "alice", seq)

    verdict = check_live(history)

    assert verdict.duplicates == 1
    assert verdict.out_of_order == 1
    assert verdict.gaps == 1  # 2 -> 4 jumped...
    assert verdict.missed == 0  # ...but 3 arrived later, so nothing was missed for good


def test_updates_skipped_by_a_snapshot_reset_are_counted_apart_from_gaps():
    history = History()
    for seq in (1, 2):
        _update(history, "alice", seq, session=1)
    _update(history, "alice", 50, session=2, reset=True)  # history trimmed: snapshot instead
    _update(history, "alice", 51, session=2)

    verdict = check_live(history)

    assert (verdict.gaps, verdict.missed) == (0, 0)
    assert (verdict.resets, verdict.missed_across_reset) == (1, 47)
    assert all(check.passed for check in verdict.to_checks())


def test_a_snapshot_reset_delivered_twice_is_a_duplicate_not_a_second_reset():
    history = History()
    _update(history, "alice", 1, session=1)
    _update(history, "alice", 9, session=2, reset=True)
    _update(history, "alice", 9, session=2, reset=True)

    verdict = check_live(history)

    assert (verdict.resets, verdict.duplicates, verdict.missed_across_reset) == (1, 1, 7)


def test_a_reset_to_a_lower_sequence_starts_a_new_baseline():
    history = History()
    for seq in (1, 2, 3, 5):  # 4 was missed before the channel's sequence restarted
        _update(history, "alice", seq, session=1)
    for seq in (1, 2):
        _update(history, "alice", seq, session=2, reset=seq == 1)

    verdict = check_live(history)

    assert (verdict.resets, verdict.duplicates, verdict.out_of_order) == (1, 0, 0)
    assert verdict.missed == 1


def test_a_client_that_never_catches_up_is_a_laggard_and_there_is_no_reconvergence():
    history = History()
    for seq in range(1, 11):
        _update(history, "alice", seq, at=float(seq))
    for seq in range(1, 5):
        _update(history, "bob", seq, at=float(seq))

    verdict = check_live(history, reference_at=0.0)

    assert verdict.laggard_count == 1
    assert (verdict.laggards[0].client, verdict.laggards[0].last_seq, verdict.laggards[0].channel_max) == (
        "bob",
        4,
        10,
    )
    assert verdict.reconverge_s is None
    assert not _checks_by_name(verdict.to_checks())["live.reconverged"].passed
    assert check_live(history, clients=["alice"]).laggard_count == 0


def test_the_true_channel_maximum_reveals_an_update_no_client_received():
    history = History()
    for seq in (1, 2, 3):
        _update(history, "alice", seq)

    assert check_live(history).laggard_count == 0
    assert check_live(history, channel_max={"views": 4}).laggard_count == 1


def test_channels_are_judged_separately_per_client():
    history = History()
    history.observe("live_update", "views:1", 1.0, client="alice", channel="views", seq=1, session=1)
    history.observe("live_update", "typing:5", 1.0, client="alice", channel="typing", seq=5, session=1)
    history.observe("live_update", "views:2", 2.0, client="alice", channel="views", seq=2, session=1)

    verdict = check_live(history)

    assert (verdict.streams, verdict.gaps) == (2, 0)
    assert verdict.channel_max == {"views": 2, "typing": 5}


def test_per_ticket_order_is_measured_always_but_judged_only_when_asked():
    history = History()
    first = history.invoke("c", "post_message", "m1", ticket_id=1)
    first.ok()
    history.invoke("c", "post_message", "m2", ticket_id=1).ok()
    history.observe("processed", "m2", 10.0, ticket_id=1)
    history.observe("processed", "m1", 10.1, ticket_id=1)
    verdict = check_messages(history)
    assert verdict.order_violations == 1
    assert "messages.per_ticket_order" not in {c.name for c in verdict.to_checks()}


def test_a_lost_message_is_named_by_the_path_that_lost_it():
    history = History()
    history.invoke("c", "post_message", "stored-then-503", ticket_id=1).info("HTTP 503", status=503)
    history.invoke("c", "post_message", "stored-then-503", ticket_id=1).ok(status=202)  # the retry
    history.invoke("c", "post_message", "dropped-in-flight", ticket_id=1).ok(status=202)
    history.invoke("c", "post_message", "processed", ticket_id=1).ok(status=202)
    history.observe("processed", "processed", 1.0, ticket_id=1)

    paths = lost_paths(history, ("post_message",))

    assert paths == {RETRIED_AFTER_UNKNOWN: 1, FIRST_ATTEMPT: 1}


def _snapshot(history: History, client: str, channel: str, seq: int, session: int, carried: bool) -> None:
    history.observe(
        "live_update",
        f"{channel}:{seq}",
        0.0,
        client=client,
        channel=channel,
        seq=seq,
        session=session,
        snapshot=True,
        carried=carried,
    )


def test_a_plain_snapshot_restoring_a_channels_state_skips_nothing_the_agent_needs():
    history = History()
    _snapshot(history, "alice", "views", 1, session=1, carried=True)
    _update(history, "alice", 2, session=1)
    _snapshot(history, "alice", "views", 9, session=2, carried=True)  # reconnected without resume
    _update(history, "alice", 10, session=2)

    verdict = check_live(history)

    assert (verdict.gaps, verdict.missed, verdict.missed_by_snapshot, verdict.duplicates) == (0, 0, 0, 0)
    assert verdict.updates == 2  # baselines are not updates


def test_events_a_snapshot_jumps_over_on_a_channel_it_does_not_carry_are_missed():
    history = History()
    _snapshot(history, "alice", "typing", 3, session=1, carried=False)
    history.observe("live_update", "typing:4", 0.0, client="alice", channel="typing", seq=4, session=1)
    _snapshot(history, "alice", "typing", 9, session=2, carried=False)  # typing 5..9 never shown

    verdict = check_live(history)

    assert verdict.gaps == 0
    assert (verdict.missed_by_snapshot, verdict.missed_in_all) == (5, 5)


def test_a_new_session_starting_where_the_last_ended_is_neither_a_gap_nor_a_duplicate():
    history = History()
    _snapshot(history, "alice", "typing", 3, session=1, carried=False)
    _snapshot(history, "alice", "typing", 3, session=2, carried=False)

    verdict = check_live(history)

    assert (verdict.duplicates, verdict.missed_in_all) == (0, 0)
