"""Equal values numbered alike, a million of them at C speed: how the checker groups its keys.

A dict does this exactly but slowly at that scale: every lookup is a few cache misses into a table
of a million entries. Here the values' hashes are sorted instead (numpy), and each value is then
compared with the first of its group in one pass; only if two different values share a hash
(64 bits: for a million distinct keys, about once in 40 million runs) are they numbered again
with a dict. Either way the numbers are the same.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from itertools import count

import numpy as np

# The hash that groups values; a test replaces it to make every value collide.
_hash = hash


def first_occurrences(values: Sequence[Hashable]) -> np.ndarray:
    """For each value, the index of its first occurrence in `values` (an int64 array).

    Equal values (as a dict sees them: equal hash and ==) get the same number and different ones
    different numbers, so the numbers name the groups of equal values, and a value is the first
    of its group exactly where its number is its own index."""
    size = len(values)
    if size == 0:
        return np.zeros(0, np.int64)
    hashes = np.fromiter(map(_hash, values), np.int64, count=size)
    # A stable sort keeps each group's members in index order: its first member comes first.
    order = np.argsort(hashes, kind="stable")
    sorted_hashes = hashes[order]
    starts = np.empty(size, bool)
    starts[0] = True
    np.not_equal(sorted_hashes[1:], sorted_hashes[:-1], out=starts[1:])
    numbers = np.empty(size, np.int64)
    numbers[order] = order[starts][np.cumsum(starts) - 1]
    objects = np.fromiter(values, object, count=size)  # each value one element, even a tuple
    later = np.flatnonzero(numbers != np.arange(size))
    if (objects[later] == objects[numbers[later]]).all():
        return numbers
    # Two different values share a hash: what the sort put together is not one group.
    first: dict[Hashable, int] = {}
    return np.fromiter(map(first.setdefault, values, count()), np.int64, count=size)
