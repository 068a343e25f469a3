"""Backlog and replay figures of an outage, read from a history."""

from __future__ import annotations

from harness.checks.replay import availability, replay_after
from harness.record.history import History


def _post(history: History, key: str, outcome: str = "ok") -> None:
    op = history.invoke("client", "post_message", key)
    if outcome == "ok":
        op.ok()
    elif outcome == "fail":
        op.fail("HTTP 503")
    else:
        op.info("timeout")


def test_availability_counts_only_posts_invoked_inside_the_window():
    history = History()
    _post(history, "a")
    _post(history, "b", "fail")
    _post(history, "c", "info")
    history.invoke("client", "get_ticket", "x").fail("down")

    everything = availability(history, 0, float("inf"), "post_message")
    assert (everything.attempted, everything.acked) == (3, 1)
    assert round(everything.ratio, 3) == 0.333
    assert availability(history, 0, 1, "post_message").ratio is None  # nothing invoked in 1970


def test_backlog_is_what_was_acked_before_recovery_and_not_yet_processed():
    history = History()
    for key in ("early", "waiting-1", "waiting-2"):
        _post(history, key)
    _post(history, "refused", "fail")
    recovered_at = 1000.0 + history.op(0).invoke_wall
    history.observe("processed", "early", recovered_at - 5)
    history.observe("processed", "waiting-1", recovered_at + 2)
    history.observe("processed", "waiting-2", recovered_at + 4.5)
    history.observe("processed", "waiting-2", recovered_at + 6)  # a redelivery does not extend the replay

    replay = replay_after(history, recovered_at, "post_message")
    assert (replay.backlog, replay.replayed, replay.replay_s) == (2, 2, 4.5)
    assert replay.complete
    assert replay.rate_per_s == 0.4


def test_a_backlog_that_never_drains_has_no_replay_time():
    history = History()
    _post(history, "lost")
    _post(history, "replayed")
    recovered_at = history.op(1).invoke_wall + 1
    history.observe("processed", "replayed", recovered_at + 1)

    replay = replay_after(history, recovered_at, "post_message")
    assert (replay.backlog, replay.replayed) == (2, 1)
    assert not replay.complete
    assert replay.replay_s is None and replay.rate_per_s is None


def test_nothing_waiting_at_recovery_means_a_zero_replay():
    history = History()
    _post(history, "done")
    history.observe("processed", "done", history.op(0).invoke_wall + 0.1)
    replay = replay_after(history, history.op(0).invoke_wall + 10, "post_message")
    assert (replay.backlog, replay.replay_s) == (0, 0.0)
