"""Jittered exponential backoff: how long the relay and the worker wait before trying the broker again."""

import random

import pytest

from services.common.backoff import Backoff


def test_the_ceiling_doubles_from_base_until_the_cap():
    backoff = Backoff(base=0.2, cap=5.0, rng=random.Random(1))
    ceilings = []
    for _ in range(8):
        ceilings.append(backoff.ceiling())
        backoff.next_delay()
    assert ceilings == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])


def test_every_delay_is_drawn_between_zero_and_the_ceiling():
    backoff = Backoff(base=0.2, cap=5.0, rng=random.Random(7))
    for _ in range(200):
        ceiling = backoff.ceiling()
        assert 0.0 <= backoff.next_delay() <= ceiling


def test_delays_are_jittered_so_clients_do_not_retry_in_lockstep():
    delays = {round(Backoff(rng=random.Random(seed)).next_delay(), 6) for seed in range(20)}
    assert len(delays) > 10


def test_a_success_starts_the_next_outage_from_base_again():
    backoff = Backoff(base=0.2, cap=5.0)
    for _ in range(10):
        backoff.next_delay()
    backoff.reset()
    assert backoff.ceiling() == pytest.approx(0.2)


def test_a_very_long_outage_stays_at_the_cap():
    backoff = Backoff(base=0.2, cap=5.0)
    backoff.failures = 10_000
    assert backoff.ceiling() == 5.0


def test_nonsense_bounds_are_refused():
    with pytest.raises(ValueError):
        Backoff(base=0, cap=1)
    with pytest.raises(ValueError):
        Backoff(base=2, cap=1)
