"""Grouping by hash numbers values exactly as a dict would, also when hashes collide."""

from __future__ import annotations

import random
from itertools import count

import pytest

from harness.checks import grouping
from harness.checks.grouping import first_occurrences


def _by_dict(values: list) -> list[int]:
    first: dict = {}
    return list(map(first.setdefault, values, count()))


def _mixed_values(n: int) -> list:
    """Strings, ints, tuples and None, many repeated; 1, 1.0 and True are one value to a dict, and
    so is one NaN object (it equals nothing, not even itself, but a dict finds it by identity)."""
    rng = random.Random(7)
    nan = float("nan")
    pool = [f"key-{i}" for i in range(n // 3)] + [1, 1.0, True, 2, None, (1, "a"), (1, "a"), "", nan]
    return [rng.choice(pool) for _ in range(n)]


def test_each_value_is_numbered_by_its_first_occurrence():
    values = ["b", "a", "b", "c", "a", "b"]
    assert first_occurrences(values).tolist() == [0, 1, 0, 3, 1, 0]
    assert first_occurrences([]).tolist() == []


def test_the_numbers_are_a_dicts_on_mixed_values():
    values = _mixed_values(5_000)
    assert first_occurrences(values).tolist() == _by_dict(values)


@pytest.mark.parametrize("collide", [lambda value: 0, lambda value: hash(value) % 3], ids=["all", "some"])
def test_values_whose_hashes_collide_are_still_told_apart(monkeypatch, collide):
    values = _mixed_values(2_000)
    monkeypatch.setattr(grouping, "_hash", collide)
    assert first_occurrences(values).tolist() == _by_dict(values)
