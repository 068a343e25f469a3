"""Equal values numbered alike, a million of them at C speed: how the checker groups its keys.

A dict does this exactly but slowly at that scale: every lookup is a few cache misses into a table
of a million entries. Here the values' hashes are sorted instead (numpy), and each value is then
compared with the first of its group in one pass over the values in their own order. Values
that share a hash but are not equal (rare: a million keys have about one such pair in 20 runs,
the low bits of each hash giving way to its index) are told apart with a dict of just those.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

# The hash that groups values; a test replaces it to make values collide.
_hash = hash


def first_occurrences(values: Sequence[Hashable]) -> np.ndarray:
    """For each value, the index of its first occurrence in `values` (an int64 array).

    Equal values (as a dict sees them: equal hash and ==) get the same number and different ones
    different numbers, so the numbers name the groups of equal values, and a value is the first
    of its group exactly where its number is its own index."""
    size = len(values)
    if size == 0:
        return np.zeros(0, np.int64)
    index_bits = max(1, (size - 1).bit_length())
    positions = np.arange(size)
    hashes = np.fromiter(map(_hash, values), np.int64, count=size)
    # Each hash with its low bits replaced by the value's index: one sort of distinct integers
    # puts equal hashes together, each group's members in index order (its first one first).
    keyed = np.sort(hashes >> index_bits << index_bits | positions)
    order = keyed & ((1 << index_bits) - 1)
    group = keyed >> index_bits
    starts = np.empty(size, bool)
    starts[0] = True
    np.not_equal(group[1:], group[:-1], out=starts[1:])
    numbers = np.empty(size, np.int64)
    numbers[order] = order[starts][np.cumsum(starts) - 1]
    # Each later member against its group's first: in index order, so both sides are read
    # roughly in the order they lie in memory.
    later = np.flatnonzero(numbers != positions)
    objects = np.fromiter(values, object, count=size)  # each value one element, even a tuple
    strangers = later[~(objects[later] == objects[numbers[later]])]
    # Equal values share a hash, so a stranger's equals are its group's first (by identity, as a
    # NaN is) or strangers of the same group.
    first: dict[Hashable, int] = {}
    for index in strangers.tolist():
        group_first = int(numbers[index])
        first.setdefault(values[group_first], group_first)
        numbers[index] = first.setdefault(values[index], index)
    return numbers
