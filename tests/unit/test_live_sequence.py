"""Sequence decisions: what a client does with an incoming update, and when a resume can be served."""

from __future__ import annotations

from services.common.live_feed import CHANNELS
from services.live.sequence import Cursor, Order, can_replay, classify, resume_is_possible


def test_updates_are_classified_against_the_last_applied_sequence():
    assert classify(last=4, seq=5) is Order.NEXT
    assert classify(last=4, seq=4) is Order.DUPLICATE
    assert classify(last=4, seq=2) is Order.DUPLICATE
    assert classify(last=4, seq=7) is Order.GAP


def test_a_client_that_missed_nothing_can_always_resume():
    assert can_replay(requested=10, current=10, first_retained_after=None)


def test_resume_needs_the_very_next_update_still_in_the_history():
    assert can_replay(requested=10, current=15, first_retained_after=11)
    assert not can_replay(requested=10, current=15, first_retained_after=12)  # 11 was trimmed
    assert not can_replay(requested=10, current=15, first_retained_after=None)


def test_a_client_ahead_of_the_server_cannot_resume():
    # Redis lost its data: sequences started again below what the client holds.
    assert not can_replay(requested=40, current=3, first_retained_after=None)


def _everywhere(value):
    return {channel: value for channel in CHANNELS}


def test_a_session_resumes_only_when_every_channel_can():
    current = _everywhere(10)
    first = _everywhere(None)
    assert resume_is_possible(_everywhere(10), current, first)
    behind = dict(_everywhere(10), typing=2)
    assert not resume_is_possible(behind, current, dict(first, typing=5))
    assert resume_is_possible(behind, current, dict(first, typing=3))


def test_a_resume_that_leaves_out_a_channel_starts_over():
    partial = {"views": 10}
    assert not resume_is_possible(partial, _everywhere(10), _everywhere(None))


def test_the_cursor_drops_duplicates_and_moves_past_gaps():
    cursor = Cursor()
    cursor.restart_from(_everywhere(0))
    assert [cursor.observe("views", s) for s in (1, 2, 2, 5, 6)] == [
        Order.NEXT,
        Order.NEXT,
        Order.DUPLICATE,
        Order.GAP,
        Order.NEXT,
    ]
    assert cursor.last["views"] == 6


def test_a_snapshot_tells_how_many_updates_were_skipped():
    cursor = Cursor()
    assert cursor.restart_from(_everywhere(5)) == {}  # the first snapshot skips nothing the client knew
    assert cursor.restart_from(dict(_everywhere(5), views=12)) == {"views": 7}


def test_the_cursor_offers_a_resume_only_once_it_knows_every_channel():
    cursor = Cursor()
    cursor.observe("views", 1)
    assert cursor.resume_positions() is None
    cursor.restart_from(_everywhere(3))
    assert cursor.resume_positions() == _everywhere(3)
