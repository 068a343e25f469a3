"""Reconnect policies: full jitter spreads a herd out; the naive policy brings it back in lockstep."""

from __future__ import annotations

import random

import pytest

from services.live.reconnect import FullJitterBackoff, NaiveBackoff


def test_full_jitter_stays_under_an_exponential_ceiling_and_the_cap():
    policy = FullJitterBackoff(base=0.5, cap=8.0, rng=random.Random(1))
    for attempt in range(12):
        assert 0 <= policy.next_delay() <= min(8.0, 0.5 * 2**attempt)


def test_full_jitter_spreads_clients_dropped_at_the_same_moment():
    delays = [
        FullJitterBackoff(base=1.0, cap=30.0, rng=random.Random(seed)).next_delay() for seed in range(200)
    ]
    assert len({round(d, 3) for d in delays}) > 150


def test_full_jitter_keeps_backing_off_across_handshakes_that_lead_nowhere():
    # A server that accepts then closes at once (a stale client told "restart") must not reset the backoff.
    policy = FullJitterBackoff(base=1.0, cap=64.0, rng=random.Random(2))
    for _ in range(5):
        policy.next_delay()
        policy.on_handshake()
    assert policy.attempt == 5


def test_full_jitter_resets_once_a_session_really_worked():
    policy = FullJitterBackoff(base=1.0, cap=64.0)
    for _ in range(5):
        policy.next_delay()
    policy.on_stable()
    assert policy.attempt == 0


def test_full_jitter_can_be_told_to_reset_on_every_handshake():
    policy = FullJitterBackoff(base=1.0, cap=64.0, reset_on_handshake=True)
    policy.next_delay()
    policy.on_handshake()
    assert policy.attempt == 0


def test_the_naive_policy_grows_without_jitter():
    policy = NaiveBackoff(base=0.5, cap=4.0)
    assert [policy.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_the_naive_policy_returns_after_base_seconds_forever_when_every_handshake_is_closed():
    policy = NaiveBackoff(base=0.5, cap=30.0)
    delays = []
    for _ in range(10):
        delays.append(policy.next_delay())
        policy.on_handshake()  # accepted, then closed 1012 straight away
    assert delays == [0.5] * 10


def test_no_overflow_after_very_many_failures():
    policy = FullJitterBackoff(base=0.5, cap=30.0, rng=random.Random(3))
    policy.attempt = 10_000
    assert 0 <= policy.next_delay() <= 30.0


@pytest.mark.parametrize("policy_type", [FullJitterBackoff, NaiveBackoff])
def test_a_cap_below_the_base_is_refused(policy_type):
    with pytest.raises(ValueError):
        policy_type(base=5.0, cap=1.0)
